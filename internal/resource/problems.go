package resource

import (
	"fmt"
	"strings"
)

// ProblemSummary renders problems for a job's status message: their
// count, then the first five, each as show renders it, and how many more.
func ProblemSummary(ps []Problem, show func(Problem) string) string {
	const maxListed = 5
	var b strings.Builder
	fmt.Fprintf(&b, "%d problem(s): ", len(ps))
	for i, p := range ps {
		if i == maxListed {
			fmt.Fprintf(&b, "; and %d more", len(ps)-maxListed)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(show(p))
	}
	return b.String()
}
