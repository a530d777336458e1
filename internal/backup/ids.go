package backup

import (
	"strings"

	"github.com/google/uuid"
)

// NewJobID returns a new job id: a random (version 4) UUID in upper case,
// as AWS Backup's job ids look.
func NewJobID() string { return strings.ToUpper(uuid.NewString()) }

// NewRecoveryPointID returns a new recovery point id: a random UUID in
// lower case.
func NewRecoveryPointID() string { return uuid.NewString() }
