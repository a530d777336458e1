package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/chromedp/chromedp"

	"coffer/internal/testutil"
	"coffer/internal/testutil/pgtest"
	"coffer/internal/testutil/s3server"
)

// TestConsoleRestoreFormsInBrowser: the restore wizard's structured forms
// for buckets and databases, in headless Chromium against real servers
// (versitygw, PostgreSQL). A bucket is backed up from the dashboard, an
// object chosen in the browser is previewed and restored into a new
// bucket under a prefix (the bucket then holds exactly that object); a
// database is backed up and restored under the identifier the form
// proposes (the new database holds the rows).
func TestConsoleRestoreFormsInBrowser(t *testing.T) {
	chromium := testutil.RequireTool(t, "chromium")
	srv := s3server.Start(t)
	srv.CreateBucket(t, "photos")
	ctx := context.Background()
	for key, body := range map[string]string{"2024/a.jpg": "aaaa", "2024/b.jpg": "bbbbbb", "cover.jpg": "cc"} {
		if _, err := srv.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("photos"), Key: aws.String(key),
			Body: strings.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	pg := pgtest.Start(t, pgtest.Options{})
	pg.CreateDB(t, "orders_db")
	pg.Exec(t, "orders_db", "CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 250) g")

	dir := t.TempDir()
	cfg := "listen: 127.0.0.1:0\ndata_dir: " + filepath.Join(dir, "data") + "\nregion: " + rRegion + "\n" +
		"accounts:\n  - id: \"111111111111\"\n    access_keys:\n      - access_key_id: " + consoleKeyA + "\n        secret_access_key: " + consoleSecretA + "\n" +
		"s3_endpoints:\n  - id: gw\n    url: " + srv.Endpoint + "\n    region: " + srv.Region + "\n    path_style: true\n" +
		"    access_key_id: " + srv.AccessKey + "\n    secret_access_key: " + srv.SecretKey + "\n" +
		"buckets:\n  - name: photos\n    account: \"111111111111\"\n    endpoint: gw\n" +
		fmt.Sprintf("database_servers:\n  - id: pg\n    engine: postgres\n    host: \"%s\"\n    port: %d\n    user: %s\n    password: \"%s\"\n    sslmode: disable\n",
			pg.Host, pg.Port, pgtest.Superuser, pgtest.Password) +
		"databases:\n  - id: orders\n    account: \"111111111111\"\n    server: pg\n    database: orders_db\n"
	cfgPath := filepath.Join(dir, "coffer.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	shots := os.Getenv("COFFER_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	_, addr, stop := startServe(t, "--config", cfgPath)
	defer stop()
	base := "http://" + addr
	b := newBrowser(t, chromium, shots)
	field, button, link := consoleField, consoleButton, consoleLink
	bucketArn, dbArn := "arn:aws:s3:::photos", "arn:aws:rds:"+rRegion+":111111111111:db:orders"
	rpRow := func(arn string) string {
		return `//table[@aria-label='Recovery points']//tr[td/a[normalize-space(.)='` + arn + `']]`
	}

	b.run("sign in", chromedp.Navigate(base+"/console/"), chromedp.WaitVisible(button("Sign in")),
		chromedp.SendKeys(field("Access key ID"), consoleKeyA), chromedp.SendKeys(field("Secret access key"), consoleSecretA),
		chromedp.Click(button("Sign in")), chromedp.WaitVisible(button("Start backup")))
	b.run("create vault", chromedp.Click(link("Vaults")), chromedp.WaitVisible(button("Create vault")),
		chromedp.SendKeys(field("Vault name"), "v1"), chromedp.Click(button("Create vault")),
		chromedp.WaitVisible(`//table[@aria-label='Vaults']//a[normalize-space(.)='v1']`))
	for _, arn := range []string{bucketArn, dbArn} {
		b.run("back up "+arn, chromedp.Click(link("Dashboard")), chromedp.WaitVisible(button("Start backup")),
			chromedp.SetValue(field("Resource"), arn), chromedp.Click(button("Start backup")),
			chromedp.WaitVisible(`//*[@role='status' and contains(., 'Backup job')]`),
			chromedp.Click(link("Jobs")),
			chromedp.WaitVisible(`//table[@aria-label='Jobs']//tr[td[normalize-space(.)='`+arn+`']]/td[normalize-space(.)='COMPLETED']`),
			chromedp.Click(link("Recovery points")),
			chromedp.WaitVisible(rpRow(arn)+`/td[normalize-space(.)='COMPLETED']`))
	}

	// The bucket: an object chosen in the browser, restored into a new
	// bucket under a prefix.
	b.run("browse the bucket", chromedp.Click(rpRow(bucketArn)+`//a[normalize-space(.)='Browse']`),
		chromedp.WaitVisible(`//table[@aria-label='Contents']//a[normalize-space(.)='2024/']`),
		chromedp.Click(`//table[@aria-label='Contents']//a[normalize-space(.)='2024/']`),
		chromedp.WaitVisible(`//input[@aria-label='Select 2024/a.jpg']`), chromedp.Click(`//input[@aria-label='Select 2024/a.jpg']`),
		chromedp.Click(button("Restore selected")), chromedp.WaitVisible(field("Destination bucket")))
	bucket, items := b.value(field("Destination bucket")), b.value(field("Items"))
	if bucket != "photos-restored" || items != "s3://photos/2024/a.jpg" {
		t.Fatalf("bucket form: destination %q, items %q", bucket, items)
	}
	b.run("bucket preview", chromedp.SendKeys(field("Destination prefix"), "r/"), chromedp.Click(button("Preview")),
		chromedp.WaitVisible(`//*[@role='status' and contains(., 'Nothing was written')]`))
	preview, err := chromedp.Run(b.ctx, chromedp.Text(`//*[@role='status' and contains(., 'Nothing was written')]`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(preview, "Create 1, overwrite 0, skip 0") {
		t.Errorf("bucket preview: %q", preview)
	}
	b.shot("restore-s3")
	var list *s3.ListObjectsV2Output
	b.run("bucket restore", chromedp.Click(button("Start restore")), chromedp.WaitVisible(`//span[@class='state-COMPLETED']`))
	list, err = srv.Client().ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("photos-restored")})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Contents) != 1 || aws.ToString(list.Contents[0].Key) != "r/2024/a.jpg" {
		t.Fatalf("restored bucket: %+v", list.Contents)
	}
	obj, err := srv.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("photos-restored"), Key: aws.String("r/2024/a.jpg")})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(obj.Body)
	obj.Body.Close()
	if string(body) != "aaaa" {
		t.Fatalf("restored object: %q", body)
	}

	// The database: a new one under the identifier the form proposes.
	b.run("database form", chromedp.Click(link("Recovery points")), chromedp.WaitVisible(rpRow(dbArn)),
		chromedp.Click(rpRow(dbArn)+`//a[normalize-space(.)='Restore']`), chromedp.WaitVisible(field("New database identifier")))
	ident := b.value(field("New database identifier"))
	if ident != "orders-restored" {
		t.Fatalf("proposed identifier %q", ident)
	}
	// Databases have no dry run: the form offers none.
	if n, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](`[...document.querySelectorAll('main button')].filter((x) => x.textContent === 'Preview').length`)); err != nil || n != 0 {
		t.Errorf("database form: %d Preview buttons (%v)", n, err)
	}
	b.shot("restore-rds")
	b.run("database restore", chromedp.Click(button("Start restore")), chromedp.WaitVisible(`//span[@class='state-COMPLETED']`))
	dbs := pg.Databases(t)
	sort.Strings(dbs)
	if strings.Join(dbs, ",") != "orders-restored,orders_db" {
		t.Fatalf("databases after the restore: %q", dbs)
	}
	var n int
	pg.QueryRow(t, "orders-restored", "SELECT count(*) FROM items", &n)
	if n != 250 {
		t.Fatalf("restored rows: %d", n)
	}
	if b.dialogs.Load() != 0 {
		t.Fatalf("%d JavaScript dialogs opened", b.dialogs.Load())
	}
}
