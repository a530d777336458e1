package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	backupapi "github.com/aws/aws-sdk-go-v2/service/backup"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"coffer/internal/testutil"
)

const (
	consoleKeyA    = "AKIAAAAAAAAAAAAAAAAA"
	consoleSecretA = "secretsecretsecretsecret"
	consoleKeyB    = "AKIABBBBBBBBBBBBBBBB"
	consoleSecretB = "bsecretbsecretbsecretbs"
	hostileName    = `<img src=x onerror=alert(1)>.txt`
)

// consoleConfig: accounts A (the organization's management account, one
// file system) and B.
func consoleConfig(t *testing.T, dir, src string) string {
	t.Helper()
	p := filepath.Join(dir, "coffer.yaml")
	cfg := "listen: 127.0.0.1:0\ndata_dir: " + filepath.Join(dir, "data") + "\nregion: " + rRegion + "\n" +
		"accounts:\n" +
		"  - id: \"111111111111\"\n    access_keys:\n      - access_key_id: " + consoleKeyA + "\n        secret_access_key: " + consoleSecretA + "\n" +
		"  - id: \"222222222222\"\n    access_keys:\n      - access_key_id: " + consoleKeyB + "\n        secret_access_key: " + consoleSecretB + "\n" +
		"organization:\n  management_account: \"111111111111\"\n" +
		"file_systems:\n  - id: fs-0123456789abcdef0\n    account: \"111111111111\"\n    path: " + src + "\n" +
		"new_file_systems_dir: " + filepath.Join(dir, "restored") + "\n"
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// consoleClient is a cookie-keeping HTTP client of the console API.
type consoleClient struct {
	t    *testing.T
	base string
	hc   *http.Client
	csrf string
}

func newConsoleClient(t *testing.T, base string) *consoleClient {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &consoleClient{t: t, base: base, hc: &http.Client{Jar: jar}}
}

func (c *consoleClient) do(method, path string, body any, header map[string]string) (int, map[string]any, []any) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+"/console/api/"+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	var obj map[string]any
	var arr []any
	if json.Unmarshal(raw, &obj) != nil {
		_ = json.Unmarshal(raw, &arr)
	}
	return resp.StatusCode, obj, arr
}

func (c *consoleClient) signIn(akid, secret string) int {
	c.t.Helper()
	code, out, _ := c.do("POST", "signin", map[string]string{"accessKeyId": akid, "secretAccessKey": secret}, nil)
	if code == 200 {
		c.csrf, _ = out["csrfToken"].(string)
	}
	return code
}

// TestConsoleInBrowser drives the web console in headless Chromium: sign-in
// failure, sign-in, a vault created, a backup run and followed, the
// recovery point browsed (a file name with HTML shown as text, never
// executed), items chosen, a restore previewed and run to completion; a
// screenshot of each page. Then, over HTTP with the browser's session: a
// missing or forged CSRF token is refused; account B cannot see A's
// recovery point or job; signing out ends the session; repeated failed
// sign-ins are rate-limited.
func TestConsoleInBrowser(t *testing.T) {
	chromium := testutil.RequireTool(t, "chromium")
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(filepath.Join(src, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"a.txt": "alpha\n", hostileName: "x", "sub/b.txt": "bravo\n", "sub/c.md": "charlie\n"} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	shots := os.Getenv("COFFER_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	_, addr, stop := startServe(t, "--config", consoleConfig(t, dir, src))
	defer stop()
	base := "http://" + addr

	b := newBrowser(t, chromium, shots)
	bctx, dialogs, run, shot := b.ctx, &b.dialogs, b.run, b.shot
	field, button, link := consoleField, consoleButton, consoleLink

	// Sign-in: a wrong secret is refused, the right one signs in.
	run("sign-in page", chromedp.Navigate(base+"/console/"), chromedp.WaitVisible(button("Sign in")))
	shot("signin")
	run("wrong secret", chromedp.SendKeys(field("Access key ID"), consoleKeyA), chromedp.SendKeys(field("Secret access key"), "not-the-secret"),
		chromedp.Click(button("Sign in")), chromedp.WaitVisible(`//*[@role='alert' and contains(., 'Sign-in failed')]`))
	run("sign in", chromedp.SetValue(field("Secret access key"), consoleSecretA), chromedp.Click(button("Sign in")),
		chromedp.WaitVisible(link("Dashboard")), chromedp.WaitVisible(link("Vaults")), chromedp.WaitVisible(link("Recovery points")),
		chromedp.WaitVisible(link("Jobs")), chromedp.WaitVisible(button("Start backup")))
	shot("dashboard")

	// A vault.
	run("create vault", chromedp.Click(link("Vaults")), chromedp.WaitVisible(button("Create vault")),
		chromedp.SendKeys(field("Vault name"), "console-vault"), chromedp.Click(button("Create vault")),
		chromedp.WaitVisible(`//table[@aria-label='Vaults']//a[normalize-space(.)='console-vault']`))
	shot("vaults")

	// A backup into it, followed to its end.
	run("start backup", chromedp.Click(link("Dashboard")), chromedp.WaitVisible(button("Start backup")),
		chromedp.SetValue(field("Vault"), "console-vault"), chromedp.Click(button("Start backup")),
		chromedp.WaitVisible(`//*[@role='status' and contains(., 'Backup job')]`))
	run("backup completes", chromedp.Click(link("Jobs")),
		chromedp.WaitVisible(`//table[@aria-label='Jobs']//td[normalize-space(.)='backup']/following-sibling::td[normalize-space(.)='COMPLETED']`))
	shot("jobs")

	// The recovery point, browsed.
	run("browse", chromedp.Click(link("Recovery points")), chromedp.WaitVisible(`//a[normalize-space(.)='Browse']`),
		chromedp.Click(`//a[normalize-space(.)='Browse']`),
		chromedp.WaitVisible(`//table[@aria-label='Contents']//td[normalize-space(.)='`+hostileName+`']`))
	imgs, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll('main img').length`))
	if err != nil {
		t.Fatal(err)
	}
	if imgs != 0 || dialogs.Load() != 0 {
		t.Fatalf("a file name became markup: %d img elements, %d dialogs", imgs, dialogs.Load())
	}
	shot("browse")
	run("open sub", chromedp.Click(`//table[@aria-label='Contents']//a[normalize-space(.)='sub']`),
		chromedp.WaitVisible(`//input[@aria-label='Select /sub/b.txt']`), chromedp.Click(`//input[@aria-label='Select /sub/b.txt']`),
		chromedp.Click(button("Restore selected")), chromedp.WaitVisible(button("Preview")))

	// The restore wizard: preview, then run.
	run("preview", chromedp.Click(button("Preview")), chromedp.WaitVisible(`//*[@role='status' and contains(., 'Nothing was written')]`))
	preview, err := chromedp.Run(bctx, chromedp.Text(`//*[@role='status' and contains(., 'Nothing was written')]`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(preview, "Create 2, overwrite 0, skip 0") {
		t.Errorf("preview: %q", preview)
	}
	shot("restore")
	run("restore", chromedp.Click(button("Start restore")), chromedp.WaitVisible(`//span[@class='state-COMPLETED']`))
	shot("job")
	restored, _ := filepath.Glob(filepath.Join(dir, "restored", "fs-*", "sub", "b.txt"))
	if len(restored) != 1 {
		t.Fatalf("restored: %q", restored)
	}
	if b, err := os.ReadFile(restored[0]); err != nil || string(b) != "bravo\n" {
		t.Fatalf("restored b.txt: %q %v", b, err)
	}
	if dialogs.Load() != 0 {
		t.Fatalf("%d JavaScript dialogs opened", dialogs.Load())
	}

	// A backup plan made on the Plans page: listed with its rule, its
	// resources and its next runs; edited; then seen through the AWS API.
	const fsID = "fs-0123456789abcdef0"
	fsResource := "arn:aws:elasticfilesystem:" + rRegion + ":111111111111:file-system/" + fsID
	planCard := `//section[@aria-label='Plan console-plan']`
	run("create plan", chromedp.Click(link("Plans")), chromedp.WaitVisible(button("Create plan")),
		chromedp.SendKeys(field("Plan name"), "console-plan"), chromedp.SetValue(field("Target vault"), "console-vault"),
		chromedp.SetValue(field("Schedule expression"), "cron(30 2 ? * * *)"),
		chromedp.Click(`//label[contains(., '`+fsID+`')]/input`), chromedp.Click(button("Create plan")),
		chromedp.WaitVisible(planCard+`//ul[@aria-label='Next runs of console-plan']/li[contains(., '02:30:00 UTC (DailyBackups)')]`),
		chromedp.WaitVisible(planCard+`//table[@aria-label='Resources of console-plan']//td[normalize-space(.)='`+fsResource+`']`),
		chromedp.WaitVisible(planCard+`//table[@aria-label='Rules of console-plan']//td[normalize-space(.)='delete after 35 d']`))
	shot("plans")
	run("edit plan", chromedp.Click(`//a[@aria-label='Edit plan console-plan']`), chromedp.WaitVisible(button("Save plan")),
		chromedp.SetValue(field("Delete after"), "7"), chromedp.Click(button("Save plan")),
		chromedp.WaitVisible(planCard+`//table[@aria-label='Rules of console-plan']//td[normalize-space(.)='delete after 7 d']`))
	api := backupapi.New(backupapi.Options{Region: rRegion, BaseEndpoint: aws.String(base),
		Credentials: credentials.NewStaticCredentialsProvider(consoleKeyA, consoleSecretA, ""), RetryMaxAttempts: 1})
	plans, err := api.ListBackupPlans(bctx, &backupapi.ListBackupPlansInput{})
	if err != nil || len(plans.BackupPlansList) != 1 || aws.ToString(plans.BackupPlansList[0].BackupPlanName) != "console-plan" {
		t.Fatalf("ListBackupPlans: %v %+v", err, plans)
	}
	planID := plans.BackupPlansList[0].BackupPlanId
	got, err := api.GetBackupPlan(bctx, &backupapi.GetBackupPlanInput{BackupPlanId: planID})
	if err != nil || len(got.BackupPlan.Rules) != 1 {
		t.Fatalf("GetBackupPlan: %v %+v", err, got)
	}
	if r := got.BackupPlan.Rules[0]; aws.ToString(r.TargetBackupVaultName) != "console-vault" || aws.ToString(r.ScheduleExpression) != "cron(30 2 ? * * *)" ||
		r.Lifecycle == nil || aws.ToInt64(r.Lifecycle.DeleteAfterDays) != 7 || aws.ToString(r.RuleName) != "DailyBackups" {
		t.Errorf("the plan's rule through the API: %+v", r)
	}
	sels, err := api.ListBackupSelections(bctx, &backupapi.ListBackupSelectionsInput{BackupPlanId: planID})
	if err != nil || len(sels.BackupSelectionsList) != 1 {
		t.Fatalf("ListBackupSelections: %v %+v", err, sels)
	}
	sel, err := api.GetBackupSelection(bctx, &backupapi.GetBackupSelectionInput{BackupPlanId: planID, SelectionId: sels.BackupSelectionsList[0].SelectionId})
	if err != nil || len(sel.BackupSelection.Resources) != 1 || sel.BackupSelection.Resources[0] != fsResource {
		t.Fatalf("GetBackupSelection: %v %+v", err, sel)
	}

	// The browser's session cookie: HttpOnly, SameSite=Strict.
	res, err := chromedp.Call(bctx, network.GetCookies, network.GetCookiesParams{URLs: []string{base + "/console/"}})
	if err != nil {
		t.Fatal(err)
	}
	cookies := res.Cookies
	if len(cookies) != 1 || !cookies[0].HTTPOnly || cookies[0].SameSite != network.CookieSameSiteStrict || cookies[0].Path != "/console/" {
		t.Fatalf("session cookie: %+v", cookies)
	}
	ca := newConsoleClient(t, base)
	u, _ := url.Parse(base + "/console/")
	ca.hc.Jar.SetCookies(u, []*http.Cookie{{Name: cookies[0].Name, Value: cookies[0].Value, Path: "/console/"}})
	if code, _, _ := ca.do("GET", "vaults", nil, nil); code != 200 {
		t.Fatalf("the browser's session over HTTP: %d", code)
	}
	for _, h := range []map[string]string{nil, {"X-CSRF-Token": "forged"}} {
		if code, out, _ := ca.do("POST", "vaults", map[string]string{"name": "csrf-vault"}, h); code != 403 || !strings.Contains(out["error"].(string), "CSRF") {
			t.Errorf("POST with CSRF header %v: %d %v", h, code, out)
		}
	}
	_, me, _ := ca.do("GET", "me", nil, nil)
	ca.csrf, _ = me["csrfToken"].(string)

	// Account B: A's recovery point and jobs do not exist for it.
	_, _, rps := ca.do("GET", "recovery-points", nil, nil)
	_, _, jobs := ca.do("GET", "jobs?kind=backup", nil, nil)
	if len(rps) != 1 || len(jobs) != 1 {
		t.Fatalf("account A: %d recovery points, %d backup jobs", len(rps), len(jobs))
	}
	rpArn := rps[0].(map[string]any)["arn"].(string)
	jobID := jobs[0].(map[string]any)["id"].(string)
	cb := newConsoleClient(t, base)
	if code := cb.signIn(consoleKeyB, consoleSecretB); code != 200 {
		t.Fatalf("sign in as B: %d", code)
	}
	for _, p := range []string{"browse?rp=" + url.QueryEscape(rpArn), "job?kind=backup&id=" + jobID,
		"restore-metadata?vault=console-vault&rp=" + url.QueryEscape(rpArn)} {
		if code, out, _ := cb.do("GET", p, nil, nil); code != 404 {
			t.Errorf("B GET %s: %d %v", p, code, out)
		}
	}
	if code, out, _ := cb.do("POST", "restore", map[string]any{"recoveryPointArn": rpArn, "metadata": map[string]string{"file-system-id": "fs-0123456789abcdef0", "newFileSystem": "true"}},
		map[string]string{"X-CSRF-Token": cb.csrf}); code != 404 {
		t.Errorf("B restores A's recovery point: %d %v", code, out)
	}
	// B sees no plan of A's and cannot change or delete it.
	if code, _, bp := cb.do("GET", "plans", nil, nil); code != 200 || len(bp) != 0 {
		t.Errorf("B lists plans: %d %v", code, bp)
	}
	for _, p := range []string{"plans/update", "plans/delete"} {
		body := map[string]any{"id": aws.ToString(planID), "name": "stolen", "ruleName": "r", "schedule": "cron(0 5 ? * * *)", "vaultName": "console-vault",
			"resources": []string{"*"}}
		if p == "plans/delete" {
			body = map[string]any{"id": aws.ToString(planID)}
		}
		if code, out, _ := cb.do("POST", p, body, map[string]string{"X-CSRF-Token": cb.csrf}); code != 404 {
			t.Errorf("B POST %s of A's plan: %d %v", p, code, out)
		}
	}
	if _, _, bj := cb.do("GET", "jobs?all=1", nil, nil); len(bj) != 0 {
		t.Errorf("B sees %d jobs with all=1", len(bj))
	}
	// The management account's organization view sees every account.
	if _, _, aj := ca.do("GET", "jobs?all=1", nil, nil); len(aj) < 2 {
		t.Errorf("organization view: %d jobs", len(aj))
	}

	// A plan deleted through the console is gone from the AWS API, with
	// its selection; a forged CSRF token deletes nothing.
	if code, _, _ := ca.do("POST", "plans/delete", map[string]string{"id": aws.ToString(planID)}, map[string]string{"X-CSRF-Token": "forged"}); code != 403 {
		t.Errorf("plan delete with a forged CSRF token: %d", code)
	}
	if code, out, _ := ca.do("POST", "plans/delete", map[string]string{"id": aws.ToString(planID)}, map[string]string{"X-CSRF-Token": ca.csrf}); code != 200 {
		t.Fatalf("delete plan: %d %v", code, out)
	}
	if plans, err := api.ListBackupPlans(context.Background(), &backupapi.ListBackupPlansInput{}); err != nil || len(plans.BackupPlansList) != 0 {
		t.Errorf("plans after delete: %v %+v", err, plans)
	}

	// Sign-out ends the session.
	if code, _, _ := ca.do("POST", "signout", nil, map[string]string{"X-CSRF-Token": ca.csrf}); code != 200 {
		t.Fatalf("sign out: %d", code)
	}
	if code, _, _ := ca.do("GET", "vaults", nil, nil); code != 401 {
		t.Errorf("after sign-out: %d", code)
	}

	// Failed sign-ins are limited per address: the right secret waits too.
	cc := newConsoleClient(t, base)
	for i := range 5 {
		if code := cc.signIn(consoleKeyA, "wrong-wrong-wrong"); code != 401 {
			t.Fatalf("failure %d: %d", i, code)
		}
	}
	if code := cc.signIn(consoleKeyA, consoleSecretA); code != 429 {
		t.Errorf("sign-in after 5 failures: %d, want 429", code)
	}
}

// browser is a headless Chromium driven with chromedp; JavaScript dialogs
// are counted (and dismissed).
type browser struct {
	t       *testing.T
	ctx     context.Context
	shots   string
	dialogs atomic.Int32
}

func newBrowser(t *testing.T, chromium, shots string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 860), chromedp.Flag("disable-gpu", true))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelA)
	bctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(cancelB)
	bctx, cancelT := context.WithTimeout(bctx, 5*time.Minute)
	t.Cleanup(cancelT)
	b := &browser{t: t, ctx: bctx, shots: shots}
	opened := chromedp.Events(bctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range opened {
			if err != nil {
				return
			}
			b.dialogs.Add(1)
			_, _ = chromedp.Call(bctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	}()
	return b
}

// run does the actions of a step, each with a generous bound of its own,
// so that a failure names it.
func (b *browser) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	for i, a := range actions {
		sctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
		err := chromedp.Do(sctx, a)
		cancel()
		if err != nil {
			html, _ := chromedp.Run(b.ctx, chromedp.OuterHTML(chromedp.CSS("main")))
			b.t.Fatalf("%s (action %d): %v\npage: %s", what, i, err, html)
		}
	}
}

// shot saves a screenshot of the page as name.png.
func (b *browser) shot(name string) {
	b.t.Helper()
	b.run("settle", chromedp.Sleep(300*time.Millisecond))
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// value is the value of the form field at sel.
func (b *browser) value(sel string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Value(sel))
	if err != nil {
		b.t.Fatalf("value of %s: %v", sel, err)
	}
	return v
}

// XPaths by accessible name: a form field by its label, a button, a
// navigation link.
func consoleField(label string) string {
	return `//label[contains(normalize-space(.), '` + label + `')]//*[self::input or self::select or self::textarea]`
}

func consoleButton(name string) string { return `//button[normalize-space(.)='` + name + `']` }

func consoleLink(name string) string { return `//nav//a[normalize-space(.)='` + name + `']` }
