package console_test

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"coffer/internal/clock"
	"coffer/internal/console"
	"coffer/internal/resource/filesystem"
	"coffer/internal/scheduler"
	"coffer/internal/service"
	"coffer/internal/store"
	"coffer/internal/store/sqlite"
	"coffer/internal/testutil/stack"
)

const (
	keyA, secretA = "AKIAAAAAAAAAAAAAAAAA", "secret-a-secret-a"
	keyB, secretB = "AKIABBBBBBBBBBBBBBBB", "secret-b-secret-b"
	acctA         = "111111111111"
)

type planEnv struct {
	t   *testing.T
	h   http.Handler
	svc *service.Service
	st  *sqlite.Store
	clk *clock.Fake
}

func newPlanEnv(t *testing.T) *planEnv {
	t.Helper()
	ctx := context.Background()
	e := &planEnv{t: t, clk: clock.NewFake(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))}
	var err error
	if e.st, err = sqlite.Open(ctx, filepath.Join(t.TempDir(), "meta.db")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.st.Close() })
	stk, err := stack.Build(stack.Options{Store: e.st, Clock: e.clk})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = stk.Service
	c, err := console.New(console.Config{Region: "us-east-1", Keys: map[string]console.Key{keyA: {Secret: secretA, Account: acctA},
		keyB: {Secret: secretB, Account: "222222222222"}}, Clock: e.clk}, e.svc)
	if err != nil {
		t.Fatal(err)
	}
	e.h = console.Route(c, http.NotFoundHandler())
	if _, err := e.svc.CreateVault(ctx, service.Caller{AccountID: acctA, Region: "us-east-1"}, service.CreateVaultRequest{Name: "v1"}); err != nil {
		t.Fatal(err)
	}
	return e
}

// session signs in and returns the cookie and CSRF header.
func (e *planEnv) session(akid, secret string) ([]*http.Cookie, map[string]string) {
	e.t.Helper()
	rec := call(e.t, e.h, "POST", "/console/api/signin", `{"accessKeyId":"`+akid+`","secretAccessKey":"`+secret+`"}`, nil, nil)
	var me struct{ CSRFToken string }
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &me) != nil {
		e.t.Fatalf("sign in: %d %s", rec.Code, rec.Body)
	}
	return rec.Result().Cookies(), map[string]string{"X-CSRF-Token": me.CSRFToken}
}

type planJSON struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	VersionID     string `json:"versionId"`
	LastExecution string `json:"lastExecution"`
	Simple        bool   `json:"simple"`
	Rules         []struct {
		ID, Name, VaultName, Schedule string
		DeleteAfterDays               *int64 `json:"deleteAfterDays"`
	} `json:"rules"`
	Selections []struct {
		ID, Name  string
		Resources []string
	} `json:"selections"`
	NextRuns []struct{ Time, Rule string } `json:"nextRuns"`
	LastRuns []struct {
		ID, State, ResourceArn string
	} `json:"lastRuns"`
}

func (e *planEnv) plans(ck []*http.Cookie) []planJSON {
	e.t.Helper()
	rec := call(e.t, e.h, "GET", "/console/api/plans", "", ck, nil)
	var out []planJSON
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &out) != nil {
		e.t.Fatalf("plans: %d %s", rec.Code, rec.Body)
	}
	return out
}

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestPlans: the console's plan endpoints create a plan with one rule and
// one selection, list it with its next runs and, once the scheduler ran
// it, its last run; edit it (stale forms refused, the selection replaced
// when the resources change); refuse bad input with the service's
// messages; keep plans with more than the form shows read-only; delete
// it with its selection. Another account sees and changes none of it.
func TestPlans(t *testing.T) {
	e := newPlanEnv(t)
	ctx := context.Background()
	fs := filesystem.NewResource("us-east-1", acctA, "fs-0123456789abcdef0", t.TempDir(), nil)
	if err := e.st.Write(ctx, func(tx store.Tx) error { return tx.UpsertResource(ctx, fs) }); err != nil {
		t.Fatal(err)
	}
	ck, csrf := e.session(keyA, secretA)
	form := map[string]any{"name": "nightly", "ruleName": "Nightly", "schedule": "cron(0 11 ? * * *)", "vaultName": "v1",
		"deleteAfterDays": 14, "resources": []string{fs.Arn}}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for a, b := range form {
			m[a] = b
		}
		m[k] = v
		return m
	}
	for _, c := range []struct {
		body map[string]any
		code int
		msg  string
	}{
		{with("resources", []string{}), 400, "at least one resource"},
		{with("schedule", "cron(nonsense)"), 400, "Invalid ScheduleExpression"},
		{with("vaultName", "nope"), 400, "Backup vault nope does not exist"},
		{with("name", "bad name!"), 400, "BackupPlanName"},
		{with("resources", []string{"not-an-arn"}), 400, "is not a resource ARN"},
		{with("coldAfterDays", 10), 400, "at least 90 days greater"},
	} {
		rec := call(t, e.h, "POST", "/console/api/plans", js(c.body), ck, csrf)
		if rec.Code != c.code || !strings.Contains(rec.Body.String(), c.msg) {
			t.Errorf("create %v: %d %s, want %d %q", c.body, rec.Code, rec.Body, c.code, c.msg)
		}
	}
	if ps := e.plans(ck); len(ps) != 0 {
		t.Fatalf("refused forms left plans: %+v", ps)
	}
	if rec := call(t, e.h, "POST", "/console/api/plans", js(form), ck, nil); rec.Code != 403 {
		t.Fatalf("create without CSRF: %d", rec.Code)
	}
	if rec := call(t, e.h, "POST", "/console/api/plans", js(form), ck, csrf); rec.Code != 200 {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	if rec := call(t, e.h, "POST", "/console/api/plans", js(form), ck, csrf); rec.Code != 409 {
		t.Errorf("create twice: %d %s", rec.Code, rec.Body)
	}
	ps := e.plans(ck)
	if len(ps) != 1 || !ps[0].Simple || len(ps[0].Rules) != 1 || ps[0].Rules[0].VaultName != "v1" || *ps[0].Rules[0].DeleteAfterDays != 14 ||
		len(ps[0].Selections) != 1 || ps[0].Selections[0].Resources[0] != fs.Arn || len(ps[0].NextRuns) != 3 ||
		ps[0].NextRuns[0].Time != "2026-03-01T11:00:00Z" || ps[0].NextRuns[0].Rule != "Nightly" || len(ps[0].LastRuns) != 0 {
		t.Fatalf("listed: %+v", ps)
	}
	p := ps[0]

	// The scheduler runs the rule at 11:00: the plan's last run is that
	// backup job.
	sch, err := scheduler.New(scheduler.Options{Service: e.svc, Clock: e.clk})
	if err != nil {
		t.Fatal(err)
	}
	e.clk.Set(time.Date(2026, 3, 1, 11, 0, 30, 0, time.UTC))
	if _, err := sch.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	ps = e.plans(ck)
	if len(ps[0].LastRuns) != 1 || ps[0].LastRuns[0].ResourceArn != fs.Arn || ps[0].LastExecution == "" || ps[0].NextRuns[0].Time != "2026-03-02T11:00:00Z" {
		t.Fatalf("after the run: %+v", ps[0])
	}

	// Another account: no plans, and A's plan is not found for it.
	ckB, csrfB := e.session(keyB, secretB)
	if got := e.plans(ckB); len(got) != 0 {
		t.Errorf("B lists %d plans", len(got))
	}
	for _, path := range []string{"plans/update", "plans/delete"} {
		rec := call(t, e.h, "POST", "/console/api/"+path, js(with("id", p.ID)), ckB, csrfB)
		if path == "plans/delete" {
			rec = call(t, e.h, "POST", "/console/api/"+path, js(map[string]string{"id": p.ID}), ckB, csrfB)
		}
		if rec.Code != 404 {
			t.Errorf("B %s: %d %s", path, rec.Code, rec.Body)
		}
	}

	// Edit: a stale form is refused; new resources replace the selection;
	// the rule keeps its id.
	upd := with("id", p.ID)
	upd["versionId"] = "stale"
	if rec := call(t, e.h, "POST", "/console/api/plans/update", js(upd), ck, csrf); rec.Code != 409 {
		t.Errorf("stale update: %d %s", rec.Code, rec.Body)
	}
	upd["versionId"], upd["resources"], upd["deleteAfterDays"] = p.VersionID, []string{"*"}, 0
	if rec := call(t, e.h, "POST", "/console/api/plans/update", js(upd), ck, csrf); rec.Code != 200 {
		t.Fatalf("update: %d %s", rec.Code, rec.Body)
	}
	ps = e.plans(ck)
	if len(ps) != 1 || ps[0].VersionID == p.VersionID || ps[0].Rules[0].ID != p.Rules[0].ID || ps[0].Rules[0].DeleteAfterDays != nil ||
		len(ps[0].Selections) != 1 || ps[0].Selections[0].Resources[0] != "*" || ps[0].Selections[0].ID == p.Selections[0].ID {
		t.Fatalf("after the update: %+v", ps)
	}
	sels, _, err := e.svc.ListSelections(ctx, service.Caller{AccountID: acctA, Region: "us-east-1"}, p.ID, service.Page{Limit: 10})
	if err != nil || len(sels) != 1 {
		t.Fatalf("selections through the service: %v %d", err, len(sels))
	}

	// A plan with two rules (made through the API) is read-only here.
	caller := service.Caller{AccountID: acctA, Region: "us-east-1"}
	two, err := e.svc.CreatePlan(ctx, caller, service.CreatePlanRequest{Plan: service.PlanInput{Name: "two", Rules: []service.RuleInput{
		{Name: "a", TargetVaultName: "v1"}, {Name: "b", TargetVaultName: "v1"}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range e.plans(ck) {
		if got.ID == two.ID && got.Simple {
			t.Errorf("a two-rule plan is simple: %+v", got)
		}
	}
	upd2 := with("id", two.ID)
	upd2["versionId"] = two.VersionID
	if rec := call(t, e.h, "POST", "/console/api/plans/update", js(upd2), ck, csrf); rec.Code != 400 || !strings.Contains(rec.Body.String(), "through the API") {
		t.Errorf("update of a two-rule plan: %d %s", rec.Code, rec.Body)
	}
	after, err := e.svc.GetPlan(ctx, caller, two.ID, "")
	if err != nil || len(after.Rules) != 2 || after.VersionID != two.VersionID {
		t.Errorf("the two-rule plan changed: %v %+v", err, after)
	}

	// Delete: the plan and its selection.
	if rec := call(t, e.h, "POST", "/console/api/plans/delete", js(map[string]string{"id": p.ID}), ck, csrf); rec.Code != 200 {
		t.Fatalf("delete: %d %s", rec.Code, rec.Body)
	}
	got, err := e.svc.GetPlan(ctx, caller, p.ID, "")
	if err != nil || got.DeletionDate == nil {
		t.Errorf("deleted plan: %v %+v", err, got)
	}
	if ps := e.plans(ck); len(ps) != 1 || ps[0].ID != two.ID {
		t.Errorf("after delete: %+v", ps)
	}
	if rec := call(t, e.h, "POST", "/console/api/plans/delete", js(map[string]string{"id": "no-such-plan"}), ck, csrf); rec.Code != 404 {
		t.Errorf("delete of no plan: %d %s", rec.Code, rec.Body)
	}
}
