package blobtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"

	"coffer/internal/repository/blob"
)

// Content returns deterministic pseudo-random bytes of length n derived from
// seed, so a test can check an object's content from its name alone.
func Content(seed string, n int) []byte {
	out := make([]byte, 0, n+sha256.Size)
	h := sha256.Sum256([]byte(seed))
	for len(out) < n {
		out = append(out, h[:]...)
		h = sha256.Sum256(h[:])
	}
	return out[:n]
}

// Run runs the blob.Storage contract against the storages newStorage makes.
// The suite never stores both a name and a name extending it by a '/'
// segment ("a" and "a/b"): a directory-backed storage cannot hold both and
// reports a permanent error for the second one.
// Each subtest gets its own storage, which must start empty; newStorage
// registers any cleanup on t.
func Run(t *testing.T, newStorage func(t *testing.T) blob.Storage) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s blob.Storage)
	}{
		{"PutGet", testPutGet},
		{"Ranges", testRanges},
		{"Stat", testStat},
		{"NotFound", testNotFound},
		{"List", testList},
		{"ListManyPrefixes", testListMany},
		{"ListCallbackError", testListCallbackError},
		{"Delete", testDelete},
		{"IfAbsent", testIfAbsent},
		{"IfAbsentRace", testIfAbsentRace},
		{"Large", testLarge},
		{"Names", testNames},
		{"BadNames", testBadNames},
		{"ConcurrentPuts", testConcurrentPuts},
		{"ContextCanceled", testContextCanceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStorage(t)
			tc.fn(t, s)
		})
	}
}

func mustPut(t *testing.T, s blob.Storage, name string, data []byte) {
	t.Helper()
	if err := s.Put(context.Background(), name, data, blob.PutOptions{}); err != nil {
		t.Fatalf("Put(%q): %v", name, err)
	}
}

func mustGet(t *testing.T, s blob.Storage, name string, want []byte) {
	t.Helper()
	got, err := s.Get(context.Background(), name, 0, -1)
	if err != nil {
		t.Fatalf("Get(%q): %v", name, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%q): %d bytes differ from the %d stored", name, len(got), len(want))
	}
}

func listAll(t *testing.T, s blob.Storage, prefix string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	err := s.List(context.Background(), prefix, func(in blob.Info) error {
		if _, dup := out[in.Name]; dup {
			return fmt.Errorf("name %q listed twice", in.Name)
		}
		out[in.Name] = in.Size
		return nil
	})
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return out
}

func testPutGet(t *testing.T, s blob.Storage) {
	ctx := context.Background()
	mustPut(t, s, "a", []byte("hello"))
	mustGet(t, s, "a", []byte("hello"))
	mustPut(t, s, "empty", nil)
	mustGet(t, s, "empty", []byte{})
	// Without IfAbsent a Put replaces the object.
	mustPut(t, s, "a", []byte("replaced, and longer"))
	mustGet(t, s, "a", []byte("replaced, and longer"))
	mustPut(t, s, "a", []byte("x"))
	mustGet(t, s, "a", []byte("x"))
	// The storage must not keep a reference to the caller's buffer.
	buf := []byte("original")
	mustPut(t, s, "dir/sub/b", buf)
	copy(buf, "XXXXXXXX")
	mustGet(t, s, "dir/sub/b", []byte("original"))
	if _, err := s.Get(ctx, "dir", 0, -1); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Get of a name that is only a prefix: %v, want ErrNotFound", err)
	}
}

func testRanges(t *testing.T, s blob.Storage) {
	ctx := context.Background()
	data := Content("ranges", 1000)
	mustPut(t, s, "r", data)
	mustPut(t, s, "e", nil)
	for _, tc := range []struct {
		name           string
		obj            string
		offset, length int64
		want           []byte
		err            error
	}{
		{"whole", "r", 0, -1, data, nil},
		{"whole explicit", "r", 0, 1000, data, nil},
		{"head", "r", 0, 10, data[:10], nil},
		{"middle", "r", 100, 250, data[100:350], nil},
		{"tail open", "r", 990, -1, data[990:], nil},
		{"tail exact", "r", 999, 1, data[999:], nil},
		{"zero length", "r", 500, 0, []byte{}, nil},
		{"at end open", "r", 1000, -1, []byte{}, nil},
		{"at end zero", "r", 1000, 0, []byte{}, nil},
		{"past end", "r", 995, 10, nil, blob.ErrInvalidRange},
		{"offset past end", "r", 1001, -1, nil, blob.ErrInvalidRange},
		{"offset far past end", "r", 1 << 40, 1, nil, blob.ErrInvalidRange},
		{"negative offset", "r", -1, 5, nil, blob.ErrInvalidRange},
		{"empty whole", "e", 0, -1, []byte{}, nil},
		{"empty one byte", "e", 0, 1, nil, blob.ErrInvalidRange},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Get(ctx, tc.obj, tc.offset, tc.length)
			if rr, ok := s.(blob.RangeReader); ok {
				// GetInto must agree with Get, into a small and a large buffer.
				for _, size := range []int{0, 16, 4096} {
					buf := make([]byte, 3, size+3)
					into, ierr := rr.GetInto(ctx, tc.obj, tc.offset, tc.length, buf[3:])
					if (ierr == nil) != (err == nil) || (err == nil && !bytes.Equal(into, got)) {
						t.Fatalf("GetInto(%d,%d) with a %d-byte buffer = %d bytes, %v; Get = %d bytes, %v",
							tc.offset, tc.length, size, len(into), ierr, len(got), err)
					}
				}
			}
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("Get(%d,%d) = %v, want %v", tc.offset, tc.length, err, tc.err)
				}
				if !blob.IsPermanent(err) {
					t.Fatalf("invalid range error %v is not permanent", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Get(%d,%d): %v", tc.offset, tc.length, err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("Get(%d,%d): got %d bytes, want %d", tc.offset, tc.length, len(got), len(tc.want))
			}
		})
	}
}

func testStat(t *testing.T, s blob.Storage) {
	mustPut(t, s, "st/x", Content("stat", 4321))
	in, err := s.Stat(context.Background(), "st/x")
	if err != nil {
		t.Fatal(err)
	}
	if in.Name != "st/x" || in.Size != 4321 || in.ModTime.IsZero() {
		t.Fatalf("Stat = %+v, want name st/x, size 4321, a modification time", in)
	}
	mustPut(t, s, "st/x", nil)
	in, err = s.Stat(context.Background(), "st/x")
	if err != nil || in.Size != 0 {
		t.Fatalf("Stat after replace = %+v, %v; want size 0", in, err)
	}
}

func testNotFound(t *testing.T, s blob.Storage) {
	ctx := context.Background()
	mustPut(t, s, "present/x", []byte("x"))
	for _, name := range []string{"missing", "present/missing", "missing/deeper/x", "present"} {
		if _, err := s.Get(ctx, name, 0, -1); !errors.Is(err, blob.ErrNotFound) || !blob.IsPermanent(err) {
			t.Errorf("Get(%q) = %v, want ErrNotFound", name, err)
		}
		if _, err := s.Get(ctx, name, 5, 1); !errors.Is(err, blob.ErrNotFound) {
			t.Errorf("Get(%q, range) = %v, want ErrNotFound", name, err)
		}
		if _, err := s.Stat(ctx, name); !errors.Is(err, blob.ErrNotFound) {
			t.Errorf("Stat(%q) = %v, want ErrNotFound", name, err)
		}
		if err := s.Delete(ctx, name); !errors.Is(err, blob.ErrNotFound) {
			t.Errorf("Delete(%q) = %v, want ErrNotFound", name, err)
		}
	}
	if got := listAll(t, s, "missing"); len(got) != 0 {
		t.Errorf("List(missing) = %v, want nothing", got)
	}
}

func testList(t *testing.T, s blob.Storage) {
	names := map[string]int64{
		"a.x":        1,
		"ab":         2,
		"a/b":        3,
		"a/c/d":      4,
		"a/c/e":      5,
		"a-b/x":      6,
		"b/a":        7,
		"bb":         8,
		"x/y/z/w":    9,
		"x/y/z2":     10,
		"x/yy":       11,
		"dot.ted/.f": 12,
	}
	for n, size := range names {
		mustPut(t, s, n, Content(n, int(size)))
	}
	want := func(prefix string) map[string]int64 {
		out := map[string]int64{}
		for n, size := range names {
			if len(n) >= len(prefix) && n[:len(prefix)] == prefix {
				out[n] = size
			}
		}
		return out
	}
	for _, prefix := range []string{"", "a", "a/", "a/c", "a/c/", "a/c/d", "a-", "b", "b/", "x/y", "x/y/", "x/y/z", "dot.ted/", "dot.ted/.", "nothing", "nothing/"} {
		got := listAll(t, s, prefix)
		if w := want(prefix); !equalSizes(got, w) {
			t.Errorf("List(%q) = %v, want %v", prefix, keys(got), keys(w))
		}
	}
}

func testListMany(t *testing.T, s blob.Storage) {
	ctx := context.Background()
	const n = 2500
	want := map[string]int64{}
	sem := make(chan struct{}, max(1, s.Properties().Connections))
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		name := fmt.Sprintf("p%d/%04x", i%3, i)
		size := i % 7
		want[name] = int64(size)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := s.Put(ctx, name, Content(name, int(size)), blob.PutOptions{}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := listAll(t, s, "")
	if !equalSizes(got, want) {
		t.Fatalf("List(\"\") returned %d objects, want %d", len(got), len(want))
	}
	got = listAll(t, s, "p1/")
	count := 0
	for name := range want {
		if name[:3] == "p1/" {
			count++
		}
	}
	if len(got) != count {
		t.Fatalf("List(p1/) returned %d objects, want %d", len(got), count)
	}
}

func testListCallbackError(t *testing.T, s blob.Storage) {
	for i := range 20 {
		mustPut(t, s, fmt.Sprintf("cb/%02d", i), []byte{byte(i)})
	}
	stop := errors.New("stop here")
	calls := 0
	err := s.List(context.Background(), "cb/", func(blob.Info) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("List with failing callback = %v, want the callback's error", err)
	}
	if calls != 3 {
		t.Fatalf("callback called %d times after it failed on the 3rd", calls)
	}
}

func testDelete(t *testing.T, s blob.Storage) {
	ctx := context.Background()
	mustPut(t, s, "d/one", []byte("1"))
	mustPut(t, s, "d/two", []byte("2"))
	if err := s.Delete(ctx, "d/one"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "d/one", 0, -1); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Get after Delete = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "d/one"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("second Delete = %v, want ErrNotFound", err)
	}
	if got := listAll(t, s, "d/"); len(got) != 1 || got["d/two"] != 1 {
		t.Fatalf("List after Delete = %v, want only d/two", got)
	}
	// A deleted name can be used again, also with IfAbsent.
	if err := s.Put(ctx, "d/one", []byte("again"), blob.PutOptions{IfAbsent: true}); err != nil {
		t.Fatalf("Put IfAbsent after Delete: %v", err)
	}
	mustGet(t, s, "d/one", []byte("again"))
}

func testIfAbsent(t *testing.T, s blob.Storage) {
	ctx := context.Background()
	if err := s.Put(ctx, "ia/x", []byte("first"), blob.PutOptions{IfAbsent: true}); err != nil {
		t.Fatalf("first IfAbsent Put: %v", err)
	}
	err := s.Put(ctx, "ia/x", []byte("second"), blob.PutOptions{IfAbsent: true})
	if !errors.Is(err, blob.ErrAlreadyExists) || !blob.IsPermanent(err) {
		t.Fatalf("second IfAbsent Put = %v, want ErrAlreadyExists", err)
	}
	mustGet(t, s, "ia/x", []byte("first"))
	if got := listAll(t, s, "ia/"); len(got) != 1 {
		t.Fatalf("List after refused Put = %v, want one object", got)
	}
}

func testIfAbsentRace(t *testing.T, s blob.Storage) {
	if !s.Properties().ConditionalPut {
		t.Skip("storage reports ConditionalPut: false; IfAbsent is check-then-put")
	}
	ctx := context.Background()
	const racers = 12
	for round := range 5 {
		name := fmt.Sprintf("race/%d", round)
		var wg sync.WaitGroup
		results := make([]error, racers)
		start := make(chan struct{})
		for i := range racers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				results[i] = s.Put(ctx, name, Content(fmt.Sprintf("%s/%d", name, i), 10000+i), blob.PutOptions{IfAbsent: true})
			}()
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range results {
			switch {
			case err == nil:
				if winner >= 0 {
					t.Fatalf("round %d: racers %d and %d both won", round, winner, i)
				}
				winner = i
			case errors.Is(err, blob.ErrAlreadyExists):
			default:
				t.Fatalf("round %d: racer %d: %v", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no racer won", round)
		}
		mustGet(t, s, name, Content(fmt.Sprintf("%s/%d", name, winner), 10000+winner))
	}
}

func testLarge(t *testing.T, s blob.Storage) {
	ctx := context.Background()
	const size = 20 << 20
	data := Content("large", size)
	mustPut(t, s, "large/obj", data)
	in, err := s.Stat(ctx, "large/obj")
	if err != nil || in.Size != size {
		t.Fatalf("Stat = %+v, %v; want %d bytes", in, err, size)
	}
	mustGet(t, s, "large/obj", data)
	got, err := s.Get(ctx, "large/obj", 7<<20+3, 5<<20)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data[7<<20+3:12<<20+3]) {
		t.Fatal("ranged read of a large object returned wrong bytes")
	}
}

func testNames(t *testing.T, s blob.Storage) {
	names := []string{
		"a.b-c_d",
		"x/.hidden",
		"..x",
		"x..",
		".-_",
		"UPPER/lower/123",
		"a/b/c/d/e/f/g/h",
		"-leading-dash",
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	}
	for _, n := range names {
		mustPut(t, s, n, []byte(n))
	}
	for _, n := range names {
		mustGet(t, s, n, []byte(n))
	}
	got := listAll(t, s, "")
	if len(got) != len(names) {
		t.Fatalf("List = %v, want %v", keys(got), names)
	}
}

// BadNames are names every Storage must reject with a permanent error.
var BadNames = []string{
	"", "/", "/a", "a/", "a//b", ".", "..", "../a", "a/..", "a/../b", "a/./b", "./a",
	"a b", "a\\b", "a:b", "a*b", "a?b", "a%2fb", "ä", "a\x00b", "a\nb", "a~b", "a+b",
}

func testBadNames(t *testing.T, s blob.Storage) {
	ctx := context.Background()
	for _, n := range BadNames {
		if err := s.Put(ctx, n, []byte("x"), blob.PutOptions{}); err == nil || !blob.IsPermanent(err) {
			t.Errorf("Put(%q) = %v, want a permanent error", n, err)
		}
		if _, err := s.Get(ctx, n, 0, -1); err == nil || !blob.IsPermanent(err) {
			t.Errorf("Get(%q) = %v, want a permanent error", n, err)
		}
		if _, err := s.Stat(ctx, n); err == nil || !blob.IsPermanent(err) {
			t.Errorf("Stat(%q) = %v, want a permanent error", n, err)
		}
		if err := s.Delete(ctx, n); err == nil || !blob.IsPermanent(err) {
			t.Errorf("Delete(%q) = %v, want a permanent error", n, err)
		}
	}
	for _, p := range []string{"/", "/a", "a//", "../", "a/../", "a b"} {
		if err := s.List(ctx, p, func(blob.Info) error { return nil }); err == nil || !blob.IsPermanent(err) {
			t.Errorf("List(%q) = %v, want a permanent error", p, err)
		}
	}
	if got := listAll(t, s, ""); len(got) != 0 {
		t.Fatalf("rejected names left objects: %v", keys(got))
	}
}

func testConcurrentPuts(t *testing.T, s blob.Storage) {
	ctx := context.Background()
	const n = 64
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("cc/%d/obj-%d", i%4, i)
			errs[i] = s.Put(ctx, name, Content(name, 1000+i*37), blob.PutOptions{IfAbsent: i%2 == 0})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Put %d: %v", i, err)
		}
	}
	for i := range n {
		name := fmt.Sprintf("cc/%d/obj-%d", i%4, i)
		mustGet(t, s, name, Content(name, 1000+i*37))
	}
	if got := listAll(t, s, "cc/"); len(got) != n {
		t.Fatalf("List(cc/) = %d objects, want %d", len(got), n)
	}
}

func testContextCanceled(t *testing.T, s blob.Storage) {
	mustPut(t, s, "ctx/present", []byte("x"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Put(ctx, "ctx/new", []byte("x"), blob.PutOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with canceled context = %v, want context.Canceled", err)
	}
	if _, err := s.Get(ctx, "ctx/present", 0, -1); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with canceled context = %v, want context.Canceled", err)
	}
	if _, err := s.Stat(ctx, "ctx/present"); !errors.Is(err, context.Canceled) {
		t.Errorf("Stat with canceled context = %v, want context.Canceled", err)
	}
	if err := s.List(ctx, "", func(blob.Info) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("List with canceled context = %v, want context.Canceled", err)
	}
	if err := s.Delete(ctx, "ctx/present"); !errors.Is(err, context.Canceled) {
		t.Errorf("Delete with canceled context = %v, want context.Canceled", err)
	}
	got := listAll(t, s, "ctx/")
	if len(got) != 1 || got["ctx/present"] != 1 {
		t.Fatalf("after canceled calls List = %v, want only ctx/present", keys(got))
	}
}

func equalSizes(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func keys(m map[string]int64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
