package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	alisdk "github.com/aliyun/alibaba-cloud-sdk-go/sdk"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth/credentials"
	alierr "github.com/aliyun/alibaba-cloud-sdk-go/sdk/errors"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/backup"
)

// TestServeMountsHBR: `coffer serve` answers the HBR RPC API (Go SDK, V2
// signatures, RegionId = hbr_region_id) and the AWS API on one listener
// with the same access key.
func TestServeMountsHBR(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "coffer.yaml")
	const akid, secret = "AKIAHBRTESTHBRTEST01", "secretsecretsecretsecretsecret"
	if err := os.WriteFile(cfg, []byte(`listen: "127.0.0.1:0"
data_dir: "`+filepath.Join(dir, "data")+`"
region: "us-east-1"
hbr_region_id: "cn-hangzhou"
accounts:
  - id: "111111111111"
    access_keys:
      - access_key_id: "`+akid+`"
        secret_access_key: "`+secret+`"
`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, addr, stop := startServe(t, "--config", cfg)
	defer stop()
	aws3 := backup.New(backup.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + addr),
		Credentials: awscreds.NewStaticCredentialsProvider(akid, secret, ""), RetryMaxAttempts: 1})
	if _, err := aws3.CreateBackupVault(context.Background(), &backup.CreateBackupVaultInput{BackupVaultName: aws.String("shared")}); err != nil {
		t.Fatal(err)
	}
	call := func(region string) (map[string]any, error) {
		c, err := alisdk.NewClientWithOptions(region, alisdk.NewConfig().WithAutoRetry(false).WithScheme("HTTP"),
			credentials.NewAccessKeyCredential(akid, secret))
		if err != nil {
			t.Fatal(err)
		}
		req := requests.NewCommonRequest()
		host, port, _ := net.SplitHostPort(addr)
		req.Method, req.Scheme, req.Domain, req.Port = "POST", "http", host, port
		req.Product, req.Version, req.ApiName = "hbr", "2017-09-08", "DescribeVaults"
		resp, err := c.ProcessCommonRequest(req)
		if err != nil {
			return nil, err
		}
		var out map[string]any
		return out, json.Unmarshal(resp.GetHttpContentBytes(), &out)
	}
	out, err := call("cn-hangzhou")
	if err != nil {
		t.Fatal(err)
	}
	vs, _ := out["Vaults"].(map[string]any)["Vault"].([]any)
	if len(vs) != 1 || vs[0].(map[string]any)["VaultName"] != "shared" || out["Code"] != "200" {
		t.Fatalf("DescribeVaults = %v", out)
	}
	// RegionId must be hbr_region_id.
	_, err = call("us-west-1")
	var se *alierr.ServerError
	if !errors.As(err, &se) || se.ErrorCode() != "InvalidParameter" || !strings.Contains(se.Message(), "cn-hangzhou") {
		t.Fatalf("other RegionId: %v", err)
	}
}
