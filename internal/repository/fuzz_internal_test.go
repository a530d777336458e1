package repository

import (
	"bytes"
	"testing"

	"coffer/internal/repository/blob/blobtest"
	"coffer/internal/repository/chunker"
)

func FuzzDecodeKeyFile(f *testing.F) {
	master := bytes.Repeat([]byte{1}, 32)
	w, err := wrapKey(master)
	if err != nil {
		f.Fatal(err)
	}
	km := keyMaterial{dataKey: bytes.Repeat([]byte{2}, 32), idKey: bytes.Repeat([]byte{3}, 32), gearKey: bytes.Repeat([]byte{4}, 32)}
	good := encodeKeyFile(w, km)
	f.Add(good)
	f.Add(good[:10])
	f.Add([]byte(keyMagic + "\x02"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeKeyFile(w, b)
		if err != nil {
			return
		}
		if !bytes.Equal(got.dataKey, km.dataKey) {
			t.Fatal("forged key file accepted")
		}
	})
}

func FuzzDecodeManifest(f *testing.F) {
	// Fixed keys: fuzz workers are separate processes and must agree.
	km := keyMaterial{dataKey: bytes.Repeat([]byte{2}, 32), idKey: bytes.Repeat([]byte{3}, 32), gearKey: bytes.Repeat([]byte{4}, 32)}
	opts := Options{}
	st := blobtest.NewMem(nil)
	if err := opts.fill(st); err != nil {
		f.Fatal(err)
	}
	r, err := newRepository(st, opts, Config{}, km)
	if err != nil {
		f.Fatal(err)
	}
	sealed := r.aead.Seal(nil, []byte(`{"version":1,"time":"2026-01-01T00:00:00Z","root":"`+ID{1}.String()+`","labels":{"a":"b"}}`), []byte(manifestAAD))
	f.Add(sealed)
	f.Add(r.aead.Seal(nil, []byte(`{"version":2}`), []byte(manifestAAD)))
	f.Add(r.aead.Seal(nil, []byte(`[`), []byte(manifestAAD)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		id := idOf(b)
		m, err := r.DecodeManifest(id, b)
		if err == nil && m.ID != id {
			t.Fatal("id not kept")
		}
		// Inner plaintext decoding (sealing makes random inputs fail early).
		_, _ = r.DecodeManifest(idOf(r.aead.Seal(nil, b, []byte(manifestAAD))), r.aead.Seal(nil, b, []byte(manifestAAD)))
	})
}

func idOf(b []byte) string {
	s := sum(b)
	const hexd = "0123456789abcdef"
	out := make([]byte, manifestIDLen)
	for i := 0; i < manifestIDLen/2; i++ {
		out[2*i], out[2*i+1] = hexd[s[i]>>4], hexd[s[i]&15]
	}
	return string(out)
}

func fuzzRepo(f *testing.F) (*Repository, keyMaterial) {
	km := keyMaterial{dataKey: bytes.Repeat([]byte{2}, 32), idKey: bytes.Repeat([]byte{3}, 32), gearKey: bytes.Repeat([]byte{4}, 32)}
	opts := Options{}
	st := blobtest.NewMem(nil)
	if err := opts.fill(st); err != nil {
		f.Fatal(err)
	}
	r, err := newRepository(st, opts, Config{}, km)
	if err != nil {
		f.Fatal(err)
	}
	return r, km
}

func FuzzDecodeConfig(f *testing.F) {
	r, km := fuzzRepo(f)
	good, err := encodeConfig(Config{Version: 1, Cipher: CipherAES256GCM, IDHash: IDBlake3Keyed, Chunker: ChunkerFastCDC, ChunkSize: chunker.DefaultParams}, km, r.aead)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	bad, _ := encodeConfig(Config{Version: 1, Cipher: CipherAES256GCM, IDHash: IDBlake3Keyed, Chunker: ChunkerFastCDC, ChunkSize: chunker.Params{Min: 1, Avg: 3, Max: 2}}, km, r.aead)
	f.Add(bad)
	f.Add([]byte(configMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := decodeConfig(b, km)
		if err == nil && cfg.ChunkSize.Validate() != nil {
			t.Fatal("invalid chunk sizes accepted")
		}
	})
}

func FuzzDecodeLock(f *testing.F) {
	r, _ := fuzzRepo(f)
	f.Add(r.aead.Seal(nil, []byte(`{"kind":"shared","holder":"h","created":"2026-01-01T00:00:00Z","expires":"2026-01-01T00:05:00Z"}`), []byte(lockAAD)))
	f.Add(r.aead.Seal(nil, []byte(`{"kind":"other"}`), []byte(lockAAD)))
	f.Add([]byte("x"))
	f.Fuzz(func(t *testing.T, b []byte) {
		li, err := r.decodeLock(b)
		if err == nil && li.Kind != LockShared && li.Kind != LockExclusive {
			t.Fatal("unknown kind accepted")
		}
		_, _ = r.decodeLock(r.aead.Seal(nil, b, []byte(lockAAD)))
	})
}

func FuzzDecodeDamage(f *testing.F) {
	r, _ := fuzzRepo(f)
	good, err := r.encodeDamage([]DamagedBlob{{Type: DataBlob, ID: ID{1}, Pack: [32]byte{2}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(r.aead.Seal(nil, []byte(`{"version":1,"blobs":[{"type":3,"id":"00","pack":"00"}]}`), []byte(damagedAAD)))
	f.Add(r.aead.Seal(nil, []byte(`{"version":2,"blobs":[]}`), []byte(damagedAAD)))
	f.Add([]byte("x"))
	name := func(b []byte) string {
		s := sum(b)
		return DamagedPrefix + ID(s[:32]).String()
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, in := range [][]byte{b, r.aead.Seal(nil, b, []byte(damagedAAD))} {
			ds, err := r.decodeDamage(name(in), in)
			if err != nil {
				continue
			}
			for _, d := range ds {
				if d.Type != DataBlob && d.Type != TreeBlob {
					t.Fatalf("blob type %d accepted", d.Type)
				}
			}
			// A record that decodes names itself: a renamed one does not.
			other := DamagedPrefix + (ID{}).String()
			if _, err := r.decodeDamage(other, in); err == nil && name(in) != other {
				t.Fatal("record accepted under another name")
			}
		}
	})
}
