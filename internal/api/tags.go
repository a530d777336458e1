package api

import (
	"context"
	"net/http"
	"sort"
	"strings"

	"coffer/internal/backup"
	"coffer/internal/store"
)

// taggable resolves a resource ARN to an existing vault or recovery point
// of the caller. ARNs of other accounts or regions are reported exactly
// like missing resources; other ARN kinds are InvalidParameterValue.
func (s *Server) taggable(ctx context.Context, tx store.Tx, id Identity, arn string) error {
	parts := strings.SplitN(arn, ":", 7)
	if len(parts) != 7 || parts[0] != "arn" || !strings.HasPrefix(parts[1], "aws") || parts[2] != "backup" {
		return invalidParam("ResourceArn", "Unsupported resource type: %s", truncate(arn, 300))
	}
	kind, name := parts[5], parts[6]
	if kind != "backup-vault" && kind != "recovery-point" {
		return invalidParam("ResourceArn", "Unsupported resource type: %s", truncate(arn, 300))
	}
	notFound := &backup.Error{Code: backup.CodeNotFound, Message: "Resource " + truncate(arn, 300) + " does not exist", Context: arn}
	if parts[3] != id.Region || parts[4] != id.AccountID || name == "" {
		return notFound
	}
	var err error
	if kind == "backup-vault" {
		_, err = tx.GetVault(ctx, id.scope(), name)
	} else {
		_, err = tx.GetRecoveryPoint(ctx, id.scope(), arn)
	}
	if backup.IsCode(err, backup.CodeNotFound) {
		return notFound
	}
	return err
}

// TagResourceInput is the validated input of TagResource.
type TagResourceInput struct {
	ResourceArn string
	Tags        map[string]string
}

func (s *Server) tagResource(ctx context.Context, id Identity, in *TagResourceInput) (*struct{}, error) {
	if len(in.Tags) == 0 {
		return nil, missingParam("Tags")
	}
	if err := validateTags(in.Tags); err != nil {
		return nil, err
	}
	return nil, s.deps.Store.Write(ctx, func(tx store.Tx) error {
		if err := s.taggable(ctx, tx, id, in.ResourceArn); err != nil {
			return err
		}
		cur, err := tx.ListTags(ctx, in.ResourceArn)
		if err != nil {
			return err
		}
		for k, v := range in.Tags {
			cur[k] = v
		}
		if len(cur) > backup.MaxTagsPerResource {
			return &Error{Status: http.StatusBadRequest, Code: excLimitExceeded, Context: "Tags",
				Message: "a resource can have at most 50 tags"}
		}
		return tx.PutTags(ctx, in.ResourceArn, in.Tags)
	})
}

// UntagResourceInput is the validated input of UntagResource.
type UntagResourceInput struct {
	ResourceArn string
	TagKeyList  []string
}

func (s *Server) untagResource(ctx context.Context, id Identity, in *UntagResourceInput) (*struct{}, error) {
	if len(in.TagKeyList) == 0 {
		return nil, missingParam("TagKeyList")
	}
	return nil, s.deps.Store.Write(ctx, func(tx store.Tx) error {
		if err := s.taggable(ctx, tx, id, in.ResourceArn); err != nil {
			return err
		}
		return tx.DeleteTags(ctx, in.ResourceArn, in.TagKeyList)
	})
}

// ListTagsInput is the validated input of ListTags.
type ListTagsInput struct {
	ResourceArn string
	NextToken   *string
	MaxResults  *int64
}

// ListTagsOutput is its output.
type ListTagsOutput struct {
	Tags      map[string]string
	NextToken *string `json:",omitempty"`
}

func (s *Server) listTags(ctx context.Context, id Identity, in *ListTagsInput) (*ListTagsOutput, error) {
	filter := struct{ Arn string }{in.ResourceArn}
	pg, err := s.pager.page(id.AccountID, "ListTags", filter, in.NextToken, in.MaxResults)
	if err != nil {
		return nil, err
	}
	out := &ListTagsOutput{Tags: map[string]string{}}
	err = s.deps.Store.Read(ctx, func(tx store.Tx) error {
		if err := s.taggable(ctx, tx, id, in.ResourceArn); err != nil {
			return err
		}
		all, err := tx.ListTags(ctx, in.ResourceArn)
		if err != nil {
			return err
		}
		keys := make([]string, 0, len(all))
		for k := range all {
			if k > pg.After {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		next := ""
		if len(keys) > pg.Limit {
			keys = keys[:pg.Limit]
			next = keys[len(keys)-1]
		}
		for _, k := range keys {
			out.Tags[k] = all[k]
		}
		out.NextToken = s.pager.issue(id.AccountID, "ListTags", filter, next)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
