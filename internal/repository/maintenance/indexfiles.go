package maintenance

import (
	"context"
	"errors"
	"strings"

	"coffer/internal/repository"
	"coffer/internal/repository/blob"
	"coffer/internal/repository/pack"
)

// indexFiles is every object under index/, each read on its own.
type indexFiles struct {
	Readable []repository.IndexFile
	Damaged  []repository.DamagedIndexFile
}

// readIndexFiles reads index/ (see Repository.ReadIndexFiles).
func readIndexFiles(ctx context.Context, repo *repository.Repository) (*indexFiles, error) {
	readable, damaged, err := repo.ReadIndexFiles(ctx)
	if err != nil {
		return nil, err
	}
	return &indexFiles{Readable: readable, Damaged: damaged}, nil
}

// damageDetail is the read error of d without the file name it starts with.
func damageDetail(d repository.DamagedIndexFile) string {
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
func (x *indexFiles) split() (superseded, active []repository.DamagedIndexFile) {
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
