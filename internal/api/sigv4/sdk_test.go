package sigv4

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/backup"
	"github.com/aws/smithy-go"

	"coffer/internal/clock"
)

// TestGoSignerShapes signs every shape with the real aws-sdk-go-v2 signer,
// sends it over a real connection and expects the server to verify it.
func TestGoSignerShapes(t *testing.T) {
	v, _ := newVerifier(t0)
	srv := newServer(t, v)
	c := srv.Client()
	for _, s := range shapes {
		t.Run(s.name, func(t *testing.T) {
			req := buildRequest(t, srv.URL, s)
			var body []byte
			if s.body != "" {
				body = []byte(s.body)
			}
			signGo(t, req, body, testAKID, testSecret, "backup", testRegion, t0)
			o := send(t, c, req)
			if o.Status != 200 {
				t.Fatalf("status %d %s: %s\nAuthorization: %s", o.Status, o.Code, o.Message, req.Header.Get("Authorization"))
			}
			if o.AKID != testAKID || o.Region != testRegion || o.Date != t0.Format(amzDateFormat) {
				t.Fatalf("result = %+v", o)
			}
		})
	}
}

// TestGoSignerOtherKeysAndRegions checks that the identity returned is the one
// that signed, for several keys and (with Region unset) several regions.
func TestGoSignerOtherKeysAndRegions(t *testing.T) {
	v, _ := newVerifier(t0)
	v.Region = ""
	srv := newServer(t, v)
	creds := testCreds()
	for _, region := range []string{"us-east-1", "eu-central-1", "local"} {
		for akid, secret := range creds {
			req := buildRequest(t, srv.URL, shapes[1])
			signGo(t, req, nil, akid, secret, "backup", region, t0)
			o := send(t, srv.Client(), req)
			if o.Status != 200 || o.AKID != akid || o.Region != region {
				t.Fatalf("%s/%s: %+v", akid, region, o)
			}
		}
	}
}

// TestGoBackupClient drives the real aws-sdk-go-v2 AWS Backup client against
// the server: whatever headers the SDK signs, the request must verify.
func TestGoBackupClient(t *testing.T) {
	v := &Verifier{Creds: testCreds(), Clock: clock.Real{}, Service: "backup", Region: testRegion}
	srv := newServer(t, v)
	client := backup.New(backup.Options{
		Region:           testRegion,
		BaseEndpoint:     aws.String(srv.URL),
		Credentials:      credentialsProvider(testAKID, testSecret),
		HTTPClient:       srv.Client(),
		RetryMaxAttempts: 1,
	})
	ctx := context.Background()
	arn := "arn:aws:backup:us-east-1:111111111111:recovery-point:abc/def"
	calls := map[string]func() error{
		"ListBackupVaults": func() error {
			_, err := client.ListBackupVaults(ctx, &backup.ListBackupVaultsInput{MaxResults: aws.Int32(5)})
			return err
		},
		"DescribeRecoveryPoint": func() error {
			_, err := client.DescribeRecoveryPoint(ctx, &backup.DescribeRecoveryPointInput{BackupVaultName: aws.String("v1"), RecoveryPointArn: aws.String(arn)})
			return err
		},
		"ListBackupJobs": func() error {
			_, err := client.ListBackupJobs(ctx, &backup.ListBackupJobsInput{ByAccountId: aws.String("*"), ByResourceArn: aws.String("arn:aws:s3:::bucket/x y")})
			return err
		},
		"CreateBackupVault": func() error {
			_, err := client.CreateBackupVault(ctx, &backup.CreateBackupVaultInput{BackupVaultName: aws.String("vault-1"), BackupVaultTags: map[string]string{"k": "v w"}})
			return err
		},
		"ListBackupJobSummaries": func() error {
			_, err := client.ListBackupJobSummaries(ctx, &backup.ListBackupJobSummariesInput{AccountId: aws.String("*")})
			return err
		},
		"StopBackupJob": func() error {
			_, err := client.StopBackupJob(ctx, &backup.StopBackupJobInput{BackupJobId: aws.String("job-1")})
			return err
		},
		"DeleteBackupVault": func() error {
			_, err := client.DeleteBackupVault(ctx, &backup.DeleteBackupVaultInput{BackupVaultName: aws.String("vault-1")})
			return err
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			if err := call(); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		})
	}

	// The same client with a wrong secret must get InvalidSignatureException.
	bad := backup.New(backup.Options{
		Region: testRegion, BaseEndpoint: aws.String(srv.URL), HTTPClient: srv.Client(), RetryMaxAttempts: 1,
		Credentials: credentialsProvider(testAKID, "wrong-secret"),
	})
	_, err := bad.ListBackupVaults(ctx, &backup.ListBackupVaultsInput{})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != CodeInvalidSignature {
		t.Fatalf("wrong secret: err = %v, want %s", err, CodeInvalidSignature)
	}
	if strings.Contains(err.Error(), "wrong-secret") || strings.Contains(err.Error(), testSecret) {
		t.Fatalf("error leaks a secret: %v", err)
	}
}

func credentialsProvider(akid, secret string) aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(akid, secret, "")
}

// TestGoClientCorrectsSkew: a server whose clock is 20 minutes ahead of the
// client answers the first attempt with InvalidSignatureException ("Signature
// expired") and a Date header; aws-sdk-go-v2 then corrects its signing time
// and the retry verifies. Going the other way (server behind) works the same.
func TestGoClientCorrectsSkew(t *testing.T) {
	for _, offset := range []time.Duration{20 * time.Minute, -20 * time.Minute, 3 * time.Hour} {
		t.Run(offset.String(), func(t *testing.T) {
			fc := clock.NewFake(clock.Real{}.Now().Add(offset))
			v := &Verifier{Creds: testCreds(), Clock: fc, Service: "backup", Region: testRegion}
			var mu sync.Mutex
			var attempts []string
			inner := newServer(t, v)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				attempts = append(attempts, r.Header.Get("X-Amz-Date"))
				mu.Unlock()
				proxyTo(t, inner.URL, w, r)
			}))
			defer srv.Close()
			client := backup.New(backup.Options{
				Region: testRegion, BaseEndpoint: aws.String(srv.URL), HTTPClient: srv.Client(),
				Credentials: credentialsProvider(testAKID, testSecret), RetryMaxAttempts: 3,
			})
			_, err := client.ListBackupVaults(context.Background(), &backup.ListBackupVaultsInput{})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Fatalf("after %d attempts (%v): %v", len(attempts), attempts, err)
			}
			if len(attempts) != 2 {
				t.Fatalf("attempts = %v, want a rejected one and a corrected one", attempts)
			}
		})
	}
}

// proxyTo forwards r to base unchanged (same method, raw target, headers,
// body, Host) and copies the answer back.
func proxyTo(t *testing.T, base string, w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	u, _ := url.Parse(base)
	out, err := http.NewRequest(r.Method, base, bytes.NewReader(body))
	if err != nil {
		t.Error(err)
		return
	}
	out.URL = &url.URL{Scheme: u.Scheme, Host: u.Host, Opaque: strings.SplitN(r.RequestURI, "?", 2)[0], RawQuery: r.URL.RawQuery}
	out.Host = r.Host
	out.Header = r.Header.Clone()
	resp, err := http.DefaultClient.Do(out)
	if err != nil {
		t.Error(err)
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}
