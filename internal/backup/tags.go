package backup

import (
	"fmt"
	"strings"
)

// ValidateTags checks a tag map against AWS's rules: at most
// MaxTagsPerResource tags, keys of 1 to 128 characters not starting with
// "aws:", values of at most 256 characters. Errors name param.
func ValidateTags(param string, tags map[string]string) error {
	if len(tags) > MaxTagsPerResource {
		return &Error{Code: CodeLimitExceeded, Context: param, Message: fmt.Sprintf("a resource can have at most %d tags", MaxTagsPerResource)}
	}
	for k, v := range tags {
		if k == "" || len([]rune(k)) > 128 {
			return InvalidParam(param, "Tag keys must have 1 to 128 characters")
		}
		if len([]rune(v)) > 256 {
			return InvalidParam(param, "Tag value for %q exceeds 256 characters", k)
		}
		if strings.HasPrefix(strings.ToLower(k), "aws:") {
			return InvalidParam(param, "Tag keys starting with \"aws:\" are reserved")
		}
	}
	return nil
}
