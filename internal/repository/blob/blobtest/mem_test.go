package blobtest_test

import (
	"testing"

	"coffer/internal/repository/blob"
	"coffer/internal/repository/blob/blobtest"
)

func TestMemContract(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Storage { return blobtest.NewMem(nil) })
}
