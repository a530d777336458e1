package pgdb

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/zeebo/blake3"
	"golang.org/x/sync/errgroup"

	"coffer/internal/repository"
	"coffer/internal/repository/chunker"
	"coffer/internal/repository/snapshot"
	"coffer/internal/resource"
)

// MinServerMajor is the oldest PostgreSQL major version supported.
const MinServerMajor = 12

// Backup dumps the database in one snapshot into the session. With a
// parent, tables whose row count and checksum (computed in the snapshot)
// equal the parent's are not read again: their streams are the parent's.
func (p *Plugin) Backup(ctx context.Context, req resource.BackupRequest) (resource.BackupResult, error) {
	r := req.Resource
	what := "Backup of RDS " + r.ID + " failed"
	srv, ok := p.server(r.Attr(AttrServer))
	if !ok {
		return resource.BackupResult{}, caller(failed(resource.ErrInvalid, "database %s is on server %q, which is not configured", r.ID, r.Attr(AttrServer)), what)
	}
	d := &dumper{p: p, srv: srv, db: r.Attr(AttrDatabase), req: req, prog: newTracker(req.Progress, rowItem, "backed up")}
	start := time.Now()
	out, err := d.run(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		return out, caller(d.explain(ctx, err), what)
	}
	p.log().Info("database backed up", "database", r.ID, "server", srv.ID, "tables", out.Items, "bytes", out.BytesTotal,
		"read", out.BytesRead, "unchanged_tables", out.Unchanged, "seconds", time.Since(start).Seconds())
	return out, nil
}

// dumper is one backup.
type dumper struct {
	p    *Plugin
	srv  *Server
	db   string
	req  resource.BackupRequest
	prog *tracker

	parent     *stored
	params     chunker.Params // zero: the session's default SaveStream
	connected  bool           // the database existed when the backup began
	recordHash bool           // the server has hash_record_extended
	// streamCheck: the database's encoding reaches the client unconverted
	// (UTF8, SQL_ASCII), so the client can check its COPY streams against
	// the ChecksumText checksums (streamsum.go).
	streamCheck bool
	snapshot    string

	mu        sync.Mutex
	bytesRead int64
	counts    [3]int64 // new, changed, unchanged
}

const (
	itemNew = iota
	itemChanged
	itemUnchanged
)

// explain turns a failure into what happened to the database: gone (it
// was dropped during the backup) or the error as it is.
func (d *dumper) explain(ctx context.Context, err error) error {
	var ce *ConnError
	if errors.As(err, &ce) && ce.Code == "3D000" {
		if d.connected {
			return failed(resource.ErrSourceNotFound, "database %q on server %s was dropped during the backup", d.db, d.srv.ID)
		}
		return failed(resource.ErrSourceNotFound, "database %q does not exist on server %s", d.db, d.srv.ID)
	}
	if errors.Is(err, ErrTool) || errors.As(err, &ce) {
		return err
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), connectTimeout)
	defer cancel()
	c, cerr := d.srv.maintenance(cctx)
	if cerr != nil {
		return err
	}
	defer c.Close(cctx)
	var n int
	if qerr := c.QueryRow(cctx, "SELECT count(*) FROM pg_database WHERE datname = $1", d.db).Scan(&n); qerr == nil && n == 0 {
		return failed(resource.ErrSourceNotFound, "database %q on server %s was dropped during the backup", d.db, d.srv.ID)
	}
	return err
}

func (d *dumper) run(ctx context.Context) (resource.BackupResult, error) {
	var out resource.BackupResult
	if err := ctx.Err(); err != nil {
		return out, err
	}
	main, err := d.srv.connect(ctx, d.db)
	if err != nil {
		return out, err
	}
	defer main.Close(context.WithoutCancel(ctx))
	d.connected = true
	major, version, err := serverVersion(ctx, main)
	if err != nil {
		return out, d.srv.queryError(err, "read the server version")
	}
	if major < MinServerMajor {
		return out, failed(resource.ErrInvalid, "database server %s runs PostgreSQL %s; Coffer backs up PostgreSQL %d and later", d.srv.ID, version, MinServerMajor)
	}
	dump, err := d.p.findTool(ctx, "pg_dump", major, "dump server "+d.srv.ID+"'s databases")
	if err != nil {
		return out, err
	}
	d.loadParent(ctx)
	if _, ok := d.req.Session.(resource.ChunkSaver); ok {
		d.params = d.p.chunkSize()
		if d.parent != nil && d.parent.man.ChunkSize != (chunker.Params{}) {
			d.params = d.parent.man.ChunkSize
		}
	}

	// One snapshot for everything: this transaction exports it, the other
	// sessions and pg_dump import it.
	if _, err := main.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		return out, d.srv.queryError(err, "begin the snapshot")
	}
	if err := main.QueryRow(ctx, "SELECT pg_export_snapshot()").Scan(&d.snapshot); err != nil {
		return out, d.srv.queryError(err, "export the snapshot")
	}
	man := &Manifest{Format: FormatVersion, Engine: EnginePostgres, ServerVersion: version, ServerMajor: major,
		PgDumpVersion: dump.version, PgDumpMajor: dump.major, SourceServer: d.srv.ID, Database: d.db,
		ChecksumAlgorithm: ChecksumAlgorithm, ChunkSize: d.params, TableIndexes: true}
	facts, err := readFacts(ctx, main)
	if err != nil {
		return out, d.srv.queryError(err, "read the database's settings")
	}
	man.Encoding, man.Collate, man.CType, man.DatabaseSize = facts.Encoding, facts.Collate, facts.CType, facts.Size
	d.streamCheck = facts.Encoding == "UTF8" || facts.Encoding == "SQL_ASCII"
	tables, err := listTables(ctx, main)
	if err != nil {
		return out, d.srv.queryError(err, "list tables")
	}
	if err := lockTables(ctx, main, tables); err != nil {
		return out, d.srv.queryError(err, "lock the tables (a table was dropped or renamed as the backup started)")
	}
	if man.Sequences, err = listSequences(ctx, main); err != nil {
		return out, d.srv.queryError(err, "read sequences")
	}
	if man.Roles, err = listRoles(ctx, main); err != nil {
		return out, d.srv.queryError(err, "list the roles of privileges")
	}
	var los int64
	if err := main.QueryRow(ctx, "SELECT count(*) FROM pg_largeobject_metadata").Scan(&los); err != nil {
		return out, d.srv.queryError(err, "count large objects")
	}
	if man.ChecksumProbes, err = checksumProbes(ctx, main); err != nil {
		return out, d.srv.queryError(err, "probe the checksum functions")
	}
	_, d.recordHash = man.ChecksumProbes[ChecksumRecord]
	if h := d.p.hooks.afterSnapshot; h != nil {
		h()
	}

	// Sessions importing the snapshot, one per worker beside main.
	conns := []*pgx.Conn{main}
	defer func() {
		for _, c := range conns[1:] {
			c.Close(context.WithoutCancel(ctx))
		}
	}()
	for i := 1; i < min(d.p.workers(), len(tables)+1); i++ {
		c, err := d.srv.connect(ctx, d.db)
		if err != nil {
			return out, err
		}
		conns = append(conns, c)
		if _, err := c.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
			return out, d.srv.queryError(err, "begin a session")
		}
		if _, err := c.Exec(ctx, "SET TRANSACTION SNAPSHOT '"+d.snapshot+"'"); err != nil {
			return out, d.srv.queryError(err, "import the snapshot")
		}
	}

	for _, t := range tables {
		est := t.estimate
		if pt := d.parentTable(&t.Table); pt != nil {
			est = pt.Bytes
		}
		d.prog.expect("t:"+t.qualified(), est)
	}
	if d.parent != nil {
		d.prog.expect("lo", d.parent.man.LargeObjects.Bytes)
		d.prog.expect(preDataName, d.parent.man.PreDataSize)
		d.prog.expect(postDataName, d.parent.man.PostDataSize)
	}
	d.prog.setPhase("") // the first status: 0 of the tables

	nodes := make([]snapshot.Node, len(tables))
	var rootNodes []snapshot.Node
	var rootMu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	// The schema, by pg_dump in the same snapshot.
	g.Go(func() error {
		for _, section := range []string{preDataName, postDataName} {
			n, err := d.dumpSchema(gctx, dump, section)
			if err != nil {
				return err
			}
			rootMu.Lock()
			rootNodes = append(rootNodes, n)
			if section == preDataName {
				man.PreDataSize = n.Size
			} else {
				man.PostDataSize = n.Size
			}
			rootMu.Unlock()
		}
		return nil
	})
	// The rows, largest tables first, and the large objects.
	order := make([]int, len(tables))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return tables[order[a]].estimate > tables[order[b]].estimate })
	tasks := make(chan int)
	const loTask = -1
	g.Go(func() error {
		defer close(tasks)
		if los > 0 {
			select {
			case tasks <- loTask:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		for _, i := range order {
			select {
			case tasks <- i:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	for _, c := range conns {
		g.Go(func() error {
			for i := range tasks {
				if i == loTask {
					n, lo, err := d.dumpLargeObjects(gctx, c)
					if err != nil {
						return err
					}
					rootMu.Lock()
					man.LargeObjects = lo
					if lo.Count > 0 {
						rootNodes = append(rootNodes, n)
					}
					rootMu.Unlock()
					continue
				}
				n, err := d.dumpTable(gctx, c, &tables[i].Table)
				if err != nil {
					return err
				}
				nodes[i] = n
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return out, err
	}
	for _, c := range conns {
		if _, err := c.Exec(ctx, "COMMIT"); err != nil {
			return out, d.srv.queryError(err, "end the snapshot")
		}
	}

	schemas := map[string]bool{}
	for _, t := range tables {
		man.Tables = append(man.Tables, t.Table)
		schemas[t.Schema] = true
		out.BytesTotal += t.Bytes
	}
	if man.Tables == nil {
		man.Tables = []Table{}
	}
	tablesRoot, err := saveTree(ctx, d.req.Session, nodes)
	if err != nil {
		return out, err
	}
	mj, err := json.MarshalIndent(man, "", " ")
	if err != nil {
		return out, err
	}
	ids, n, err := d.save(ctx, bytes.NewReader(mj))
	if err != nil {
		return out, err
	}
	rootNodes = append(rootNodes, fileNode(manifestName, ids, n),
		snapshot.Node{Name: tablesDir, Type: snapshot.TypeDir, Mode: 0o700, Subtree: tablesRoot})
	if out.Root, err = saveTree(ctx, d.req.Session, rootNodes); err != nil {
		return out, err
	}
	out.Items, out.Containers = int64(len(tables)), int64(len(schemas))
	out.BytesTotal += man.LargeObjects.Bytes + man.PreDataSize + man.PostDataSize
	out.BytesRead = d.bytesRead
	out.New, out.Changed, out.Unchanged = d.counts[itemNew], d.counts[itemChanged], d.counts[itemUnchanged]
	d.prog.finish("manifest", 0)
	return out, nil
}

// loadParent reads the parent backup's manifest; an unreadable parent
// only costs reading everything again.
func (d *dumper) loadParent(ctx context.Context) {
	par := d.req.Parent
	if par == nil || par.Root == (repository.ID{}) {
		return
	}
	st, err := load(ctx, par.Loader, par.Root)
	if err != nil {
		d.p.log().Warn("backup: parent recovery point unreadable; dumping every table", "database", d.req.Resource.ID, "err", err)
		return
	}
	if st.man.ChecksumAlgorithm != ChecksumAlgorithm {
		return
	}
	d.parent = st
}

// parentTable is t's entry in the parent backup with the same row type.
func (d *dumper) parentTable(t *Table) *Table {
	if d.parent == nil {
		return nil
	}
	for i := range d.parent.man.Tables {
		pt := &d.parent.man.Tables[i]
		if pt.Schema == t.Schema && pt.Name == t.Name && pt.Signature == t.Signature {
			return pt
		}
	}
	return nil
}

func (d *dumper) count(kind int, read int64) {
	d.mu.Lock()
	d.counts[kind]++
	d.bytesRead += read
	d.mu.Unlock()
}

// save stores one stream with the database's chunk sizes.
func (d *dumper) save(ctx context.Context, rd io.Reader) ([]repository.ID, int64, error) {
	if cs, ok := d.req.Session.(resource.ChunkSaver); ok && d.params != (chunker.Params{}) {
		return cs.SaveStreamChunked(ctx, rd, d.params)
	}
	return d.req.Session.SaveStream(ctx, rd)
}

// pipeSave stores what produce writes, streaming (nothing is held whole).
func (d *dumper) pipeSave(ctx context.Context, produce func(w io.Writer) error) ([]repository.ID, int64, error) {
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		err := produce(pw)
		pw.CloseWithError(err)
		errc <- err
	}()
	ids, n, err := d.save(ctx, pr)
	pr.CloseWithError(errors.Join(err, errors.New("stream not stored")))
	perr := <-errc
	if perr != nil {
		return nil, n, perr
	}
	if err != nil {
		return nil, n, err
	}
	return ids, n, nil
}

// dumpTable stores one table's rows, or takes the parent's stream when
// the table is unchanged.
func (d *dumper) dumpTable(ctx context.Context, c *pgx.Conn, t *Table) (snapshot.Node, error) {
	name := "t:" + t.qualified()
	if h := d.p.hooks.beforeTable; h != nil {
		h(t.qualified())
	}
	pt := d.parentTable(t)
	if err := d.checksum(ctx, c, t, pt); err != nil {
		return snapshot.Node{}, d.srv.queryError(err, "checksum table "+t.qualified())
	}
	var pn snapshot.Node
	if pt != nil {
		pn, _ = d.parent.tables[pt.fileName()]
	}
	if pt != nil && pn.Name != "" && pt.Rows == t.Rows && pt.Checksum == t.Checksum && pt.ChecksumMethod == t.ChecksumMethod {
		t.Bytes, t.Order, t.Layers, t.StreamSHA256, t.StreamBLAKE3, t.StreamCheck = pt.Bytes, pt.Order, pt.Layers, pt.StreamSHA256, pt.StreamBLAKE3, pt.StreamCheck
		pn.Name = t.fileName()
		d.prog.finish(name, t.Bytes)
		d.count(itemUnchanged, 0)
		return pn, nil
	}
	kind := itemNew
	if pt != nil {
		kind = itemChanged
	}
	if pt != nil && pn.Name != "" && deltaWorthIt(pt) {
		n, err := d.dumpDelta(ctx, c, t, pt, pn)
		if err == nil {
			d.count(kind, t.Bytes)
			return n, nil
		}
		if ctx.Err() != nil || !errors.Is(err, errNoDelta) {
			return snapshot.Node{}, err
		}
		d.p.log().Info("backup: table stored whole instead of as a delta", "table", t.qualified(), "why", err)
	}
	cw := &countWriter{t: d.prog, name: name}
	sum := d.streamSum()
	tsum := d.textSum(t)
	ids, n, err := d.pipeSave(ctx, func(w io.Writer) error {
		_, err := c.PgConn().CopyTo(ctx, io.MultiWriter(w, cw, sum, tsum), copyOutSQL(t))
		if err != nil {
			return d.srv.queryError(err, "read table "+t.qualified())
		}
		return nil
	})
	if err != nil {
		return snapshot.Node{}, err
	}
	cw.flush()
	if cw.lines != t.Rows {
		return snapshot.Node{}, fmt.Errorf("table %s: %d rows dumped but %d counted in the same snapshot", t.qualified(), cw.lines, t.Rows)
	}
	t.Bytes, t.Layers = n, nil
	d.setStreamHash(t, sum)
	d.checkStream(t, tsum)
	d.prog.finish(name, n)
	d.count(kind, n)
	return fileNode(t.fileName(), ids, n), nil
}

// Row delta policy: a table is stored as a delta on its previous backup
// until it has maxLayers layers or its deltas add up to more than a
// quarter of its whole stream; then it is stored whole again, so that a
// restore never applies many layers.
const maxLayers = 8

func deltaWorthIt(pt *Table) bool {
	if h, _, _ := pt.streamHash(); h == nil {
		return false
	}
	layers := pt.layers()
	if len(layers)+1 > maxLayers {
		return false
	}
	var deltas int64
	for _, l := range layers[1:] {
		deltas += l.Bytes
	}
	return deltas <= layers[0].Bytes/4
}

// errNoDelta means a table cannot be stored as a delta this time (a row
// too long, the previous backup's rows unusable): it is stored whole.
var errNoDelta = errors.New("no delta")

// dumpDelta stores t's rows as a delta against the previous backup's
// (node pn, entry pt), read back from the repository as the rows are
// read from the server.
func (d *dumper) dumpDelta(ctx context.Context, c *pgx.Conn, t *Table, pt *Table, pn snapshot.Node) (snapshot.Node, error) {
	name := "t:" + t.qualified()
	prev, err := layersReader(ctx, d.parent.loader, pn.Content, pt.layers())
	if err != nil {
		return snapshot.Node{}, fmt.Errorf("%w: %w", errNoDelta, err)
	}
	defer prev.Close()
	prevSum, prevWant, _ := pt.streamHash()
	cw := &countWriter{t: d.prog, name: name}
	sum := d.streamSum()
	tsum := d.textSum(t)
	var st deltaStats
	ids, n, err := d.pipeSave(ctx, func(w io.Writer) error {
		cur, curW := io.Pipe()
		copyErr := make(chan error, 1)
		go func() {
			_, err := c.PgConn().CopyTo(ctx, io.MultiWriter(curW, cw, sum, tsum), copyOutSQL(t))
			if err != nil {
				err = d.srv.queryError(err, "read table "+t.qualified())
			}
			curW.CloseWithError(err)
			copyErr <- err
		}()
		var err error
		st, err = encodeDelta(io.TeeReader(prev, prevSum), cur, w)
		cur.CloseWithError(errors.Join(err, errors.New("delta ended")))
		cerr := <-copyErr
		if errors.Is(err, errLineTooLong) || errors.Is(err, errBadDelta) {
			return fmt.Errorf("%w: %w", errNoDelta, err)
		}
		if err != nil {
			return errors.Join(err, cerr)
		}
		return cerr
	})
	if err != nil {
		return snapshot.Node{}, err
	}
	if got := hex.EncodeToString(prevSum.Sum(nil)); got != prevWant {
		return snapshot.Node{}, fmt.Errorf("%w: the previous backup's rows of %s read back differently", errNoDelta, t.qualified())
	}
	cw.flush()
	if cw.lines != t.Rows {
		return snapshot.Node{}, fmt.Errorf("table %s: %d rows dumped but %d counted in the same snapshot", t.qualified(), cw.lines, t.Rows)
	}
	t.Bytes = cw.n
	d.setStreamHash(t, sum)
	d.checkStream(t, tsum)
	t.Layers = append([]Layer(nil), pt.layers()...)
	if t.Layers[0].Blobs < 0 { // the previous backup stored the rows whole
		t.Layers[0].Blobs = len(pn.Content)
	}
	t.Layers = append(t.Layers, Layer{Blobs: len(ids), Bytes: n})
	d.prog.finish(name, t.Bytes)
	d.p.log().Debug("backup: table stored as a delta", "table", t.qualified(), "copied", st.Copied, "skipped", st.Skipped, "inserted", st.Inserted, "bytes", n)
	content := append(append([]repository.ID(nil), pn.Content...), ids...)
	return fileNode(t.fileName(), content, pn.Size+n), nil
}

// checksum computes t's row count and checksum: with the text method
// where the client can check the table's COPY stream against it
// (streamChecked), else with the per-column hash method where the server
// and the column types have it (tried under a savepoint: a type without
// hash support fails the query), else the text method. A table that is
// not stream-checked keeps its parent's method while its row type does.
func (d *dumper) checksum(ctx context.Context, c *pgx.Conn, t *Table, parent *Table) error {
	if d.streamChecked(t) {
		t.ChecksumMethod = ChecksumText
		return c.QueryRow(ctx, checksumSQL(t, ChecksumText)).Scan(&t.Rows, &t.Checksum)
	}
	if d.recordHash && (parent == nil || parent.ChecksumMethod == ChecksumRecord) {
		if _, err := c.Exec(ctx, "SAVEPOINT coffer_checksum"); err != nil {
			return err
		}
		err := c.QueryRow(ctx, checksumSQL(t, ChecksumRecord)).Scan(&t.Rows, &t.Checksum)
		if err == nil {
			t.ChecksumMethod = ChecksumRecord
			_, err = c.Exec(ctx, "RELEASE SAVEPOINT coffer_checksum")
			return err
		}
		var pe *pgconn.PgError
		if !errors.As(err, &pe) {
			return err
		}
		if _, err := c.Exec(ctx, "ROLLBACK TO SAVEPOINT coffer_checksum"); err != nil {
			return err
		}
	}
	t.ChecksumMethod = ChecksumText
	return c.QueryRow(ctx, checksumSQL(t, ChecksumText)).Scan(&t.Rows, &t.Checksum)
}

// streamSum is the hash of a stream to record: BLAKE3 (SHA-256 for
// backups of the previous format, a test hook).
func (d *dumper) streamSum() hash.Hash {
	if d.p.hooks.noStreamCheck {
		return sha256.New()
	}
	return blake3.New()
}

// setStreamHash records the stream's hash sum (streamSum) in t.
func (d *dumper) setStreamHash(t *Table, sum hash.Hash) {
	t.StreamBLAKE3, t.StreamSHA256 = "", ""
	if d.p.hooks.noStreamCheck {
		t.StreamSHA256 = hex.EncodeToString(sum.Sum(nil))
	} else {
		t.StreamBLAKE3 = hex.EncodeToString(sum.Sum(nil))
	}
}

// streamChecked says whether t's COPY stream is checked against its
// checksum (textSum, checkStream): the client receives the rows' text
// unconverted and record output of the COPY columns is the row's text
// (no generated column; no money column, whose text depends on the
// session's lc_monetary).
func (d *dumper) streamChecked(t *Table) bool {
	return d.streamCheck && t.streamCheckable && !d.p.hooks.noStreamCheck
}

// textSum is a writer computing the text checksum of t's COPY stream, or
// io.Discard when t is not stream-checked.
func (d *dumper) textSum(t *Table) io.Writer {
	if !d.streamChecked(t) {
		return io.Discard
	}
	return &textChecksum{noCols: len(t.Columns) == 0}
}

// checkStream marks t's stream checked (Table.StreamCheck) when the
// client's checksum of it equals the server's of the snapshot's rows.
func (d *dumper) checkStream(t *Table, w io.Writer) {
	t.StreamCheck = ""
	sum, ok := w.(*textChecksum)
	if !ok || t.ChecksumMethod != ChecksumText {
		return
	}
	if sum.Bad() || sum.Rows() != t.Rows || sum.Sum() != t.Checksum {
		d.p.log().Warn("backup: the table's rows as copied do not give the server's checksum; a restore verifies it by reading it again",
			"table", t.qualified(), "rows", sum.Rows(), "checksum", sum.Sum(), "server_rows", t.Rows, "server_checksum", t.Checksum)
		return
	}
	t.StreamCheck = StreamCheckV1
}

// checksumProbes computes the probes of the checksum methods the server
// has (hash_record_extended arrived in PostgreSQL 14).
func checksumProbes(ctx context.Context, c *pgx.Conn) (map[string]string, error) {
	probes := map[string]string{}
	if _, err := c.Exec(ctx, "SAVEPOINT coffer_probe"); err != nil {
		return nil, err
	}
	var rec, text string
	if err := c.QueryRow(ctx, checksumProbesSQL).Scan(&rec, &text); err == nil {
		probes[ChecksumRecord], probes[ChecksumText] = rec, text
		_, err = c.Exec(ctx, "RELEASE SAVEPOINT coffer_probe")
		return probes, err
	}
	if _, err := c.Exec(ctx, "ROLLBACK TO SAVEPOINT coffer_probe"); err != nil {
		return nil, err
	}
	if err := c.QueryRow(ctx, "SELECT hashint8extended(hashtextextended('coffer', 0), 1)::text").Scan(&text); err != nil {
		return nil, err
	}
	probes[ChecksumText] = text
	return probes, nil
}

// loPiece is the size of the pieces large objects are read in.
const loPiece = 1 << 20

// dumpLargeObjects stores every large object as one stream: per object a
// line "L <oid>\n", pieces "P <n>\n" and n bytes, and a line "E\n".
func (d *dumper) dumpLargeObjects(ctx context.Context, c *pgx.Conn) (snapshot.Node, LargeObjects, error) {
	var lo LargeObjects
	if err := c.QueryRow(ctx, largeObjectsSQL).Scan(&lo.Count, &lo.Checksum); err != nil {
		return snapshot.Node{}, lo, d.srv.queryError(err, "checksum large objects")
	}
	if lo.Count == 0 {
		d.prog.finish("lo", 0)
		return snapshot.Node{}, lo, nil
	}
	if d.parent != nil {
		if pl := d.parent.man.LargeObjects; pl.Count == lo.Count && pl.Checksum == lo.Checksum {
			if n, ok := d.parent.files[largeObjsName]; ok {
				lo.Bytes = pl.Bytes
				d.prog.finish("lo", pl.Bytes)
				d.count(itemUnchanged, 0)
				return n, lo, nil
			}
		}
	}
	rows, err := c.Query(ctx, "SELECT oid FROM pg_largeobject_metadata ORDER BY oid")
	if err != nil {
		return snapshot.Node{}, lo, d.srv.queryError(err, "list large objects")
	}
	oids, err := pgx.CollectRows(rows, pgx.RowTo[uint32])
	if err != nil {
		return snapshot.Node{}, lo, d.srv.queryError(err, "list large objects")
	}
	cw := &countWriter{t: d.prog, name: "lo"}
	var data int64
	ids, n, err := d.pipeSave(ctx, func(w io.Writer) error {
		out := io.MultiWriter(w, cw)
		for _, oid := range oids {
			if _, err := io.WriteString(out, "L "+strconv.FormatUint(uint64(oid), 10)+"\n"); err != nil {
				return err
			}
			for off := int64(0); ; off += loPiece {
				var b []byte
				if err := c.QueryRow(ctx, "SELECT lo_get($1, $2, $3)", oid, off, loPiece).Scan(&b); err != nil {
					return d.srv.queryError(err, fmt.Sprintf("read large object %d", oid))
				}
				if len(b) > 0 {
					if _, err := io.WriteString(out, "P "+strconv.Itoa(len(b))+"\n"); err != nil {
						return err
					}
					if _, err := out.Write(b); err != nil {
						return err
					}
					data += int64(len(b))
				}
				if len(b) < loPiece {
					break
				}
			}
			if _, err := io.WriteString(out, "E\n"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return snapshot.Node{}, lo, err
	}
	cw.flush()
	lo.Bytes = n
	d.prog.finish("lo", n)
	kind := itemNew
	if d.parent != nil && d.parent.man.LargeObjects.Count > 0 {
		kind = itemChanged
	}
	d.count(kind, n)
	return fileNode(largeObjsName, ids, n), lo, nil
}

// dumpSchema stores pg_dump's archive of one section, taken in the
// snapshot.
func (d *dumper) dumpSchema(ctx context.Context, dump tool, section string) (snapshot.Node, error) {
	sec := "pre-data"
	if section == postDataName {
		sec = "post-data"
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := d.srv.command(ctx, dump, "--format=custom", "--compress=0", "--section="+sec, "--snapshot="+d.snapshot,
		"--dbname="+d.srv.conninfo(d.db))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return snapshot.Node{}, err
	}
	var stderr stderrTail
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return snapshot.Node{}, fmt.Errorf("run %s: %w", dump.path, err)
	}
	cw := &countWriter{t: d.prog, name: section}
	var ids []repository.ID
	var n int64
	rd, err := normalizeArchive(stdout)
	if err == nil {
		ids, n, err = d.save(ctx, io.TeeReader(rd, cw))
	}
	if err != nil {
		cancel()
	}
	_, _ = io.Copy(io.Discard, stdout)
	werr := cmd.Wait()
	if werr != nil && ctx.Err() == nil {
		return snapshot.Node{}, failed(nil, "pg_dump %s of database %q on server %s failed: %s", sec, d.db, d.srv.ID, stderr.summary(d.srv))
	}
	if err != nil {
		return snapshot.Node{}, fmt.Errorf("pg_dump %s of database %q on server %s: %w", sec, d.db, d.srv.ID, err)
	}
	if werr != nil {
		return snapshot.Node{}, ctx.Err()
	}
	cw.flush()
	d.prog.finish(section, n)
	return fileNode(section, ids, n), nil
}

// lockTables takes ACCESS SHARE locks (as pg_dump does) so that no table
// is dropped or rewritten while it is read.
func lockTables(ctx context.Context, c *pgx.Conn, tables []tableInfo) error {
	const batch = 500
	for i := 0; i < len(tables); i += batch {
		names := ""
		for j, t := range tables[i:min(i+batch, len(tables))] {
			if j > 0 {
				names += ", "
			}
			names += "ONLY " + ident(t.Schema, t.Name)
		}
		if _, err := c.Exec(ctx, "LOCK TABLE "+names+" IN ACCESS SHARE MODE"); err != nil {
			return err
		}
	}
	return nil
}
