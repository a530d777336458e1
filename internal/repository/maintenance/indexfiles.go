package maintenance

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"coffer/internal/repository"
	"coffer/internal/repository/blob"
	"coffer/internal/repository/pack"
)

// damagedIndex is an object under index/ that could not be read.
type damagedIndex struct {
	Name  string
	ID    repository.ID
	Named bool // Name is a well-formed index name (ID is set)
	Err   error
}

// indexFiles is every object under index/, each read on its own so that
// one damaged file does not hide the others.
type indexFiles struct {
	Readable []repository.IndexFile
	Damaged  []damagedIndex
}

// readIndexFiles lists index/ and reads every file. A listing error or a
// cancelled context is returned; a file that cannot be read is recorded
// in Damaged.
func readIndexFiles(ctx context.Context, repo *repository.Repository) (*indexFiles, error) {
	var names []string
	if err := repo.Storage().List(ctx, repository.IndexPrefix, func(i blob.Info) error {
		names = append(names, i.Name)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list index: %w", err)
	}
	out := &indexFiles{}
	for _, n := range names {
		id, idErr := repository.ParseID(strings.TrimPrefix(n, repository.IndexPrefix))
		f, err := repo.ReadIndexFile(ctx, n)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			out.Damaged = append(out.Damaged, damagedIndex{Name: n, ID: id, Named: idErr == nil, Err: err})
			continue
		}
		out.Readable = append(out.Readable, repository.IndexFile{Name: n, ID: id, File: f})
	}
	return out, nil
}

// detail is the read error without the file name it starts with.
func (d damagedIndex) detail() string {
	return strings.TrimPrefix(d.Err.Error(), d.Name+": ")
}

// superseded returns the IDs named in the Supersedes list of a readable file.
func (x *indexFiles) superseded() map[repository.ID]bool {
	sup := map[repository.ID]bool{}
	for _, f := range x.Readable {
		for _, s := range f.File.Supersedes {
			sup[s] = true
		}
	}
	return sup
}

// split separates the damaged files whose content a readable file
// supersedes (harmless: readers ignore them) from those it does not (their
// blob locations are lost to readers).
func (x *indexFiles) split() (superseded, active []damagedIndex) {
	sup := x.superseded()
	for _, d := range x.Damaged {
		if d.Named && sup[d.ID] {
			superseded = append(superseded, d)
		} else {
			active = append(active, d)
		}
	}
	return superseded, active
}

// isDamage reports whether a read error means the object itself is bad
// (corrupt, truncated, gone, or refused for good by the storage) rather
// than a transient or operational failure worth retrying.
func isDamage(err error) bool {
	return errors.Is(err, repository.ErrCorrupt) || errors.Is(err, pack.ErrCorrupt) || blob.IsPermanent(err)
}
