package backup

import (
	"errors"
	"fmt"
	"testing"
)

func TestCodeOf(t *testing.T) {
	cause := errors.New("disk gone")
	for _, tc := range []struct {
		err  error
		want Code
	}{
		{Errorf(CodeNotFound, "vault %s", "v"), CodeNotFound},
		{fmt.Errorf("wrapped: %w", &Error{Code: CodeAlreadyExists, Message: "x"}), CodeAlreadyExists},
		{&Error{Code: CodeUnavailable, Message: "store", Err: cause}, CodeUnavailable},
		{cause, CodeInternal},
		{nil, CodeInternal},
	} {
		if got := CodeOf(tc.err); got != tc.want {
			t.Errorf("CodeOf(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
	e := &Error{Code: CodeUnavailable, Message: "store", Err: cause}
	if !errors.Is(e, cause) || IsCode(nil, CodeInternal) || !IsCode(e, CodeUnavailable) {
		t.Fatal("unwrap/IsCode")
	}
	if VaultArn("us-east-1", "111111111111", "v") != "arn:aws:backup:us-east-1:111111111111:backup-vault:v" ||
		RecoveryPointArn("us-east-1", "111111111111", "r") != "arn:aws:backup:us-east-1:111111111111:recovery-point:r" {
		t.Fatal("arn format")
	}
}
