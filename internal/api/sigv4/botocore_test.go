package sigv4

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"coffer/internal/clock"
	"coffer/internal/testutil"
)

type pyCase struct {
	Name    string      `json:"name"`
	Method  string      `json:"method"`
	Path    string      `json:"path"`
	Query   string      `json:"query"`
	Headers [][2]string `json:"headers"`
	Body    string      `json:"body"`
}

type pyResult struct {
	Name          string `json:"name"`
	Status        int    `json:"status"`
	Code          string `json:"code"`
	Message       string `json:"message"`
	Authorization string `json:"authorization"`
}

// requireBotocore returns the python3 path, skipping (failing in CI) when
// python3 or botocore is unavailable.
func requireBotocore(t *testing.T) string {
	t.Helper()
	py := testutil.RequireTool(t, "python3")
	if out, err := exec.Command(py, "-c", "import botocore").CombinedOutput(); err != nil {
		testutil.SkipOrFail(t, "botocore cannot be imported: %v: %s", err, out)
	}
	return py
}

// runBotocore signs cases with botocore's SigV4Auth (and, with client set,
// makes real botocore "backup" client calls) against srvURL.
func runBotocore(t *testing.T, py, srvURL, akid, secret string, cases []pyCase, client bool) []pyResult {
	t.Helper()
	in, err := json.Marshal(map[string]any{
		"url": srvURL, "akid": akid, "secret": secret, "region": testRegion, "service": "backup",
		"cases": cases, "client": client,
	})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "testdata/botocore_client.py")
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("botocore_client.py: %v\n%s", err, stderr.String())
	}
	var res []pyResult
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var r pyResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("bad line %q: %v", sc.Text(), err)
		}
		res = append(res, r)
	}
	return res
}

func shapesAsPyCases() []pyCase {
	var cases []pyCase
	for _, s := range shapes {
		c := pyCase{Name: s.name, Method: s.method, Path: s.path, Query: s.query, Body: s.body}
		for _, h := range s.headers {
			if h[1] == "@body" {
				h[1] = sha256Hex([]byte(s.body))
			}
			c.Headers = append(c.Headers, h)
		}
		cases = append(cases, c)
	}
	return cases
}

// TestBotocoreSigner signs every shape with botocore.auth.SigV4Auth, sends it
// with Python's http.client exactly as shaped, and then drives the real
// botocore backup client; every request must verify.
func TestBotocoreSigner(t *testing.T) {
	py := requireBotocore(t)
	v := &Verifier{Creds: testCreds(), Clock: clock.Real{}, Service: "backup", Region: testRegion}
	srv := newServer(t, v)
	cases := shapesAsPyCases()
	cases = append(cases, pyCase{Name: "header with tab", Method: "GET", Path: "/backup-vaults/",
		Headers: [][2]string{{"X-Tabbed", "a\t\tb  c"}}},
		// With a Date header present, botocore signs with Date and sends no
		// X-Amz-Date; the value here is replaced by botocore at signing time.
		pyCase{Name: "signed Date header", Method: "GET", Path: "/backup-vaults/",
			Headers: [][2]string{{"Date", "Thu, 01 Jan 1970 00:00:00 GMT"}}})
	res := runBotocore(t, py, srv.URL, testAKID, testSecret, cases, true)
	if want := len(cases) + 7; len(res) != want {
		t.Fatalf("got %d results, want %d", len(res), want)
	}
	for _, r := range res {
		if r.Status != 200 {
			t.Errorf("%s: status %d %s: %s (Authorization: %s)", r.Name, r.Status, r.Code, r.Message, r.Authorization)
		}
	}
	if a := res[len(cases)-1].Authorization; !strings.Contains(a, "SignedHeaders=date;host,") {
		t.Errorf("Date case was not signed with the Date header: %s", a)
	}
	// botocore signs fewer headers than the Go SDK; make sure the minimal
	// set was really exercised.
	if !strings.Contains(res[0].Authorization, "SignedHeaders=host;x-amz-date,") {
		t.Errorf("unexpected botocore header set: %s", res[0].Authorization)
	}
}

// TestBotocoreWrongSecret: botocore-signed requests with a wrong secret or an
// unknown key are refused with the right codes.
func TestBotocoreWrongSecret(t *testing.T) {
	py := requireBotocore(t)
	v := &Verifier{Creds: testCreds(), Clock: clock.Real{}, Service: "backup", Region: testRegion}
	srv := newServer(t, v)
	cases := shapesAsPyCases()[:3]
	for _, r := range runBotocore(t, py, srv.URL, testAKID, "not-the-secret", cases, true) {
		if r.Status != 403 || r.Code != CodeInvalidSignature {
			t.Errorf("wrong secret %s: %d %s", r.Name, r.Status, r.Code)
		}
	}
	for _, r := range runBotocore(t, py, srv.URL, "AKIDUNKNOWN", testSecret, cases, false) {
		if r.Status != 403 || r.Code != CodeUnrecognizedClient {
			t.Errorf("unknown key %s: %d %s", r.Name, r.Status, r.Code)
		}
	}
}
