package config

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

const bucketsConf = good + `
s3_endpoints:
  - id: "minio"
    url: "http://127.0.0.1:9000"
    region: "us-east-1"
    path_style: true
    access_key_id: "minioadmin"
    secret_access_key: "supersecret-minio"
  - id: "garage-2"
    url: "https://s3.example.test"
    region: "garage"
    access_key_id: "GK123"
    secret_access_key_env: "COFFER_TEST_GARAGE_SECRET"
buckets:
  - name: "photos"
    account: "111111111111"
    endpoint: "minio"
    tags: { env: "prod" }
  - name: "logs.2024"
    account: "222222222222"
    endpoint: "garage-2"
`

func TestBucketsGood(t *testing.T) {
	t.Setenv("COFFER_TEST_GARAGE_SECRET", "garage-secret-value")
	c, err := Parse([]byte(bucketsConf))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.S3Endpoints) != 2 || len(c.Buckets) != 2 || c.S3Endpoints[1].SecretAccessKey != "garage-secret-value" ||
		!c.S3Endpoints[0].PathStyle || c.Buckets[0].Tags["env"] != "prod" || c.Buckets[1].Endpoint != "garage-2" {
		t.Fatalf("%+v %+v", c.S3Endpoints, c.Buckets)
	}
	// Neither String nor the log value shows a secret.
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("x", "endpoint", c.S3Endpoints[0], "all", c.S3Endpoints)
	b.WriteString(c.S3Endpoints[0].String() + fmt.Sprint(c.S3Endpoints[1]))
	if strings.Contains(b.String(), "supersecret") || strings.Contains(b.String(), "garage-secret") {
		t.Fatalf("secret shown: %s", b.String())
	}
}

func TestBucketsBad(t *testing.T) {
	t.Setenv("COFFER_TEST_GARAGE_SECRET", "garage-secret-value")
	t.Setenv("COFFER_TEST_EMPTY", "")
	cases := []struct{ from, to, key string }{
		{`id: "minio"`, `id: "MinIO"`, "s3_endpoints[0].id"},
		{`id: "garage-2"`, `id: "minio"`, "s3_endpoints[1].id"},
		{`url: "http://127.0.0.1:9000"`, `url: "ftp://x"`, "s3_endpoints[0].url"},
		{`url: "http://127.0.0.1:9000"`, `url: "http://h:1/path"`, "s3_endpoints[0].url"},
		{`region: "garage"`, `region: ""`, "s3_endpoints[1].region"},
		{`access_key_id: "minioadmin"`, `access_key_id: ""`, "s3_endpoints[0].access_key_id"},
		{`secret_access_key: "supersecret-minio"`, `secret_access_key: ""`, "s3_endpoints[0].secret_access_key"},
		{`secret_access_key_env: "COFFER_TEST_GARAGE_SECRET"`, `secret_access_key_env: "COFFER_TEST_EMPTY"`, "s3_endpoints[1].secret_access_key_env"},
		{`secret_access_key_env: "COFFER_TEST_GARAGE_SECRET"`, `secret_access_key_env: "1BAD NAME"`, "s3_endpoints[1].secret_access_key_env"},
		{`secret_access_key: "supersecret-minio"`, "secret_access_key: \"supersecret-minio\"\n    secret_access_key_env: \"X\"", "s3_endpoints[0].secret_access_key_env"},
		{`path_style: true`, `path_style: yes-please`, "line 29"},
		{`name: "photos"`, `name: "Photos_1"`, "buckets[0].name"},
		{`name: "photos"`, `name: "192.168.1.1"`, "buckets[0].name"},
		{`name: "logs.2024"`, `name: "photos"`, "buckets[1].name"},
		{`account: "222222222222"` + "\n    endpoint", `account: "333333333333"` + "\n    endpoint", "buckets[1].account"},
		{`endpoint: "minio"`, `endpoint: "nope"`, "buckets[0].endpoint"},
		{`    endpoint: "minio"`, "    endpoint: \"minio\"\n    region: \"x\"", "region"},
	}
	for _, c := range cases {
		in := strings.Replace(bucketsConf, c.from, c.to, 1)
		if in == bucketsConf {
			t.Fatalf("case %q does not apply", c.from)
		}
		_, err := Parse([]byte(in))
		if err == nil || !strings.Contains(err.Error(), c.key) {
			t.Errorf("%s -> %s: error %v, want one naming %s", c.from, c.to, err, c.key)
			continue
		}
		if strings.Contains(err.Error(), "supersecret") || strings.Contains(err.Error(), "garage-secret") {
			t.Errorf("error shows a secret: %v", err)
		}
	}
}
