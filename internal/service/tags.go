package service

import (
	"context"
	"sort"
	"strings"

	"coffer/internal/backup"
	"coffer/internal/store"
)

// taggable checks that arn names an existing vault, recovery point,
// backup plan or legal hold of the caller. ARNs of other accounts or regions are reported exactly like
// missing resources; other ARN kinds are InvalidParameter.
func taggable(ctx context.Context, tx store.Tx, c Caller, arn string) error {
	parts := strings.SplitN(arn, ":", 7)
	if len(parts) != 7 || parts[0] != "arn" || !strings.HasPrefix(parts[1], "aws") || parts[2] != "backup" {
		return backup.InvalidParam("ResourceArn", "Unsupported resource type: %s", backup.Truncate(arn, 300))
	}
	kind, name := parts[5], parts[6]
	if kind != "backup-vault" && kind != "recovery-point" && kind != "backup-plan" && kind != "legal-hold" {
		return backup.InvalidParam("ResourceArn", "Unsupported resource type: %s", backup.Truncate(arn, 300))
	}
	notFound := backup.NotFound(arn, "Resource %s does not exist", backup.Truncate(arn, 300))
	if parts[3] != c.Region || parts[4] != c.AccountID || name == "" {
		return notFound
	}
	var err error
	switch kind {
	case "backup-vault":
		_, err = tx.GetVault(ctx, c.Scope(), name)
	case "backup-plan":
		_, err = tx.GetPlan(ctx, c.Scope(), name, "")
	case "legal-hold":
		_, err = tx.GetLegalHold(ctx, c.Scope(), name)
	default:
		_, err = tx.GetRecoveryPoint(ctx, c.Scope(), arn)
	}
	if backup.IsCode(err, backup.CodeNotFound) {
		return notFound
	}
	return err
}

// TagResource adds or replaces tags of a vault, recovery point, backup
// plan or legal hold.
func (s *Service) TagResource(ctx context.Context, c Caller, arn string, tags map[string]string) error {
	if len(tags) == 0 {
		return backup.MissingParam("Tags")
	}
	if err := backup.ValidateTags("Tags", tags); err != nil {
		return err
	}
	return s.st.Write(ctx, func(tx store.Tx) error {
		if err := taggable(ctx, tx, c, arn); err != nil {
			return err
		}
		cur, err := tx.ListTags(ctx, arn)
		if err != nil {
			return err
		}
		for k, v := range tags {
			cur[k] = v
		}
		if err := backup.ValidateTags("Tags", cur); err != nil {
			return err
		}
		return tx.PutTags(ctx, arn, tags)
	})
}

// UntagResource removes tags of a vault, recovery point, backup plan or
// legal hold.
func (s *Service) UntagResource(ctx context.Context, c Caller, arn string, keys []string) error {
	if len(keys) == 0 {
		return backup.MissingParam("TagKeyList")
	}
	return s.st.Write(ctx, func(tx store.Tx) error {
		if err := taggable(ctx, tx, c, arn); err != nil {
			return err
		}
		return tx.DeleteTags(ctx, arn, keys)
	})
}

// ListTags lists one page of a taggable resource's tags, by key.
func (s *Service) ListTags(ctx context.Context, c Caller, arn string, p Page) (map[string]string, string, error) {
	out := map[string]string{}
	next := ""
	err := s.st.Read(ctx, func(tx store.Tx) error {
		if err := taggable(ctx, tx, c, arn); err != nil {
			return err
		}
		all, err := tx.ListTags(ctx, arn)
		if err != nil {
			return err
		}
		keys := make([]string, 0, len(all))
		for k := range all {
			if k > p.After {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		if len(keys) > p.Limit {
			keys = keys[:p.Limit]
			next = keys[len(keys)-1]
		}
		for _, k := range keys {
			out[k] = all[k]
		}
		return nil
	})
	return out, next, err
}
