package repository

import (
	"bytes"
	"coffer/internal/repository/blob/blobtest"
	"context"
	"errors"
	"testing"
)

// Damage between encoding and upload is caught before anything is stored.
func TestPackVerifyBeforeUpload(t *testing.T) {
	for _, where := range []string{"first blob", "middle blob", "header"} {
		t.Run(where, func(t *testing.T) {
			st := blobtest.NewMem(nil)
			r, err := Create(context.Background(), st, bytes.Repeat([]byte{1}, 32), Options{})
			if err != nil {
				t.Fatal(err)
			}
			testHookPackEncoded = func(b []byte) {
				switch where {
				case "first blob":
					b[20] ^= 1
				case "middle blob":
					b[len(b)/2] ^= 1
				case "header":
					b[len(b)-20] ^= 1
				}
			}
			defer func() { testHookPackEncoded = nil }()
			err = r.WithWriter(context.Background(), func(ctx context.Context, w *Writer) error {
				for i := 0; i < 50; i++ {
					if _, err := w.SaveBlob(ctx, DataBlob, bytes.Repeat([]byte{byte(i), 1, 2}, 10000)); err != nil {
						return err
					}
				}
				return nil
			})
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("WithWriter = %v, want ErrCorrupt", err)
			}
			if n := len(st.Names(DataPrefix)) + len(st.Names(IndexPrefix)); n != 0 {
				t.Fatalf("%d objects stored despite failed verification", n)
			}
		})
	}
}
