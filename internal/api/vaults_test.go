package api_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/backup"
	"github.com/aws/aws-sdk-go-v2/service/backup/types"

	cb "coffer/internal/backup"
	"coffer/internal/store"
)

var ctx = context.Background()

func vaultArn(a account, name string) string { return cb.VaultArn(region, a.id, name) }

func TestCreateDescribeListDeleteVault(t *testing.T) {
	e := start(t)
	c := e.client(acctA)
	key := "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	out, err := c.CreateBackupVault(ctx, &backup.CreateBackupVaultInput{BackupVaultName: aws.String("v1"),
		BackupVaultTags: map[string]string{"env": "prod"}, EncryptionKeyArn: aws.String(key), CreatorRequestId: aws.String("req-1")})
	must(t, err)
	if *out.BackupVaultArn != vaultArn(acctA, "v1") || *out.BackupVaultName != "v1" || out.CreationDate == nil {
		t.Fatalf("create output %+v", out)
	}
	// Same CreatorRequestId: same vault returned.
	again, err := c.CreateBackupVault(ctx, &backup.CreateBackupVaultInput{BackupVaultName: aws.String("v1"), CreatorRequestId: aws.String("req-1")})
	must(t, err)
	if *again.BackupVaultArn != *out.BackupVaultArn || !again.CreationDate.Equal(*out.CreationDate) {
		t.Fatalf("idempotent create returned %+v", again)
	}
	// Another CreatorRequestId: AlreadyExists with Arn and CreatorRequestId.
	_, err = c.CreateBackupVault(ctx, &backup.CreateBackupVaultInput{BackupVaultName: aws.String("v1"), CreatorRequestId: aws.String("req-2")})
	ae := wantErr[*types.AlreadyExistsException](t, err)
	if aws.ToString(ae.Arn) != vaultArn(acctA, "v1") || aws.ToString(ae.CreatorRequestId) != "req-1" {
		t.Fatalf("AlreadyExists fields: Arn=%v CreatorRequestId=%v", aws.ToString(ae.Arn), aws.ToString(ae.CreatorRequestId))
	}
	d, err := c.DescribeBackupVault(ctx, &backup.DescribeBackupVaultInput{BackupVaultName: aws.String("v1")})
	must(t, err)
	if aws.ToString(d.BackupVaultArn) != vaultArn(acctA, "v1") || d.VaultType != types.VaultTypeBackupVault ||
		d.VaultState != types.VaultStateAvailable || aws.ToString(d.EncryptionKeyArn) != key ||
		d.EncryptionKeyType != types.EncryptionKeyTypeCustomerManagedKmsKey || aws.ToString(d.CreatorRequestId) != "req-1" ||
		d.NumberOfRecoveryPoints != 0 || aws.ToBool(d.Locked) || d.CreationDate == nil ||
		d.CreationDate.UnixMilli() != out.CreationDate.UnixMilli() {
		t.Fatalf("describe %+v", d)
	}
	tags, err := c.ListTags(ctx, &backup.ListTagsInput{ResourceArn: aws.String(vaultArn(acctA, "v1"))})
	must(t, err)
	if len(tags.Tags) != 1 || tags.Tags["env"] != "prod" {
		t.Fatalf("tags %v", tags.Tags)
	}
	_, err = c.CreateBackupVault(ctx, &backup.CreateBackupVaultInput{BackupVaultName: aws.String("v2")})
	must(t, err)
	l, err := c.ListBackupVaults(ctx, &backup.ListBackupVaultsInput{})
	must(t, err)
	if len(l.BackupVaultList) != 2 || aws.ToString(l.BackupVaultList[0].BackupVaultName) != "v1" || l.NextToken != nil {
		t.Fatalf("list %+v", l)
	}
	if l.BackupVaultList[1].EncryptionKeyType != types.EncryptionKeyTypeAwsOwnedKmsKey {
		t.Fatalf("v2 key type %v", l.BackupVaultList[1].EncryptionKeyType)
	}
	l, err = c.ListBackupVaults(ctx, &backup.ListBackupVaultsInput{ByVaultType: types.VaultTypeBackupVault, ByShared: true})
	must(t, err)
	if len(l.BackupVaultList) != 0 {
		t.Fatalf("shared vaults: %d", len(l.BackupVaultList))
	}
	l, err = c.ListBackupVaults(ctx, &backup.ListBackupVaultsInput{ByVaultType: types.VaultTypeLogicallyAirGappedBackupVault})
	must(t, err)
	if len(l.BackupVaultList) != 0 {
		t.Fatalf("air-gapped vaults: %d", len(l.BackupVaultList))
	}

	// A vault holding a recovery point cannot be deleted.
	rp := &cb.RecoveryPoint{Arn: cb.RecoveryPointArn(region, acctA.id, "rp-1"), AccountID: acctA.id, Region: region, VaultName: "v1",
		VaultArn: vaultArn(acctA, "v1"), ResourceArn: "arn:aws:elasticfilesystem:us-east-1:111111111111:file-system/fs-0123456789abcdef0",
		ResourceType: "EFS", Status: "COMPLETED", StorageClass: "WARM", CreationDate: time.Now()}
	must(t, e.store.Write(ctx, func(tx store.Tx) error { return tx.CreateRecoveryPoint(ctx, rp) }))
	d, err = c.DescribeBackupVault(ctx, &backup.DescribeBackupVaultInput{BackupVaultName: aws.String("v1")})
	must(t, err)
	if d.NumberOfRecoveryPoints != 1 {
		t.Fatalf("NumberOfRecoveryPoints = %d", d.NumberOfRecoveryPoints)
	}
	_, err = c.DeleteBackupVault(ctx, &backup.DeleteBackupVaultInput{BackupVaultName: aws.String("v1")})
	ir := wantErr[*types.InvalidRequestException](t, err)
	if aws.ToString(ir.Message) != "Backup vault cannot be deleted because it contains recovery points." {
		t.Fatalf("message %q", aws.ToString(ir.Message))
	}
	must(t, e.store.Write(ctx, func(tx store.Tx) error {
		return tx.DeleteRecoveryPoint(ctx, store.Scope{AccountID: acctA.id, Region: region}, rp.Arn)
	}))
	_, err = c.PutBackupVaultAccessPolicy(ctx, &backup.PutBackupVaultAccessPolicyInput{BackupVaultName: aws.String("v1"), Policy: aws.String(policy)})
	must(t, err)
	_, err = c.DeleteBackupVault(ctx, &backup.DeleteBackupVaultInput{BackupVaultName: aws.String("v1")})
	must(t, err)
	_, err = c.DescribeBackupVault(ctx, &backup.DescribeBackupVaultInput{BackupVaultName: aws.String("v1")})
	expectErr[*types.ResourceNotFoundException](t, err)
	_, err = c.DeleteBackupVault(ctx, &backup.DeleteBackupVaultInput{BackupVaultName: aws.String("v1")})
	expectErr[*types.ResourceNotFoundException](t, err)
	// Tags and policy went with the vault: a new vault of the same name starts clean.
	_, err = c.CreateBackupVault(ctx, &backup.CreateBackupVaultInput{BackupVaultName: aws.String("v1")})
	must(t, err)
	tags, err = c.ListTags(ctx, &backup.ListTagsInput{ResourceArn: aws.String(vaultArn(acctA, "v1"))})
	must(t, err)
	if len(tags.Tags) != 0 {
		t.Fatalf("tags survived deletion: %v", tags.Tags)
	}
	_, err = c.GetBackupVaultAccessPolicy(ctx, &backup.GetBackupVaultAccessPolicyInput{BackupVaultName: aws.String("v1")})
	expectErr[*types.ResourceNotFoundException](t, err)
}

func TestCreateVaultErrors(t *testing.T) {
	e := start(t)
	c := e.client(acctA)
	for _, tc := range []struct {
		name string
		in   *backup.CreateBackupVaultInput
	}{
		{"alias key", &backup.CreateBackupVaultInput{BackupVaultName: aws.String("vv"), EncryptionKeyArn: aws.String("arn:aws:kms:us-east-1:111111111111:alias/x")}},
		{"bad request id", &backup.CreateBackupVaultInput{BackupVaultName: aws.String("vv"), CreatorRequestId: aws.String("no spaces allowed")}},
		{"reserved tag", &backup.CreateBackupVaultInput{BackupVaultName: aws.String("vv"), BackupVaultTags: map[string]string{"aws:x": "y"}}},
		{"bad name", &backup.CreateBackupVaultInput{BackupVaultName: aws.String("a.b")}},
	} {
		_, err := c.CreateBackupVault(ctx, tc.in)
		expectErr[*types.InvalidParameterValueException](t, err)
	}
	many := map[string]string{}
	for i := 0; i < 51; i++ {
		many[fmt.Sprintf("k%d", i)] = "v"
	}
	_, err := c.CreateBackupVault(ctx, &backup.CreateBackupVaultInput{BackupVaultName: aws.String("vv"), BackupVaultTags: many})
	expectErr[*types.LimitExceededException](t, err)
	if n := e.vaultCount(acctA); n != 0 {
		t.Fatalf("%d vaults after failed creates", n)
	}
}

const policy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::222222222222:root"},"Action":"backup:CopyIntoBackupVault","Resource":"*"}]}`

func TestAccessPolicy(t *testing.T) {
	e := start(t)
	c := e.client(acctA)
	_, err := c.CreateBackupVault(ctx, &backup.CreateBackupVaultInput{BackupVaultName: aws.String("pv")})
	must(t, err)
	_, err = c.GetBackupVaultAccessPolicy(ctx, &backup.GetBackupVaultAccessPolicyInput{BackupVaultName: aws.String("pv")})
	expectErr[*types.ResourceNotFoundException](t, err)
	for _, bad := range []string{
		`not json`, `[]`, `{"Statement":[{"Effect":"Allow","Action":"x","Resource":"*"}]}`,
		`{"Version":"2012-10-17","Statement":[]}`,
		`{"Version":"2012-10-17","Statement":[{"Effect":"Maybe","Action":"x","Resource":"*"}]}`,
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Resource":"*"}]}`,
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"x"}]}`,
	} {
		_, err = c.PutBackupVaultAccessPolicy(ctx, &backup.PutBackupVaultAccessPolicyInput{BackupVaultName: aws.String("pv"), Policy: aws.String(bad)})
		expectErr[*types.InvalidParameterValueException](t, err)
	}
	_, err = c.PutBackupVaultAccessPolicy(ctx, &backup.PutBackupVaultAccessPolicyInput{BackupVaultName: aws.String("pv")})
	expectErr[*types.MissingParameterValueException](t, err)
	_, err = c.PutBackupVaultAccessPolicy(ctx, &backup.PutBackupVaultAccessPolicyInput{BackupVaultName: aws.String("nope"), Policy: aws.String(policy)})
	expectErr[*types.ResourceNotFoundException](t, err)
	_, err = c.PutBackupVaultAccessPolicy(ctx, &backup.PutBackupVaultAccessPolicyInput{BackupVaultName: aws.String("pv"), Policy: aws.String(policy)})
	must(t, err)
	got, err := c.GetBackupVaultAccessPolicy(ctx, &backup.GetBackupVaultAccessPolicyInput{BackupVaultName: aws.String("pv")})
	must(t, err)
	if aws.ToString(got.Policy) != policy || aws.ToString(got.BackupVaultArn) != vaultArn(acctA, "pv") {
		t.Fatalf("policy not verbatim: %+v", got)
	}
	_, err = c.DeleteBackupVaultAccessPolicy(ctx, &backup.DeleteBackupVaultAccessPolicyInput{BackupVaultName: aws.String("pv")})
	must(t, err)
	_, err = c.DeleteBackupVaultAccessPolicy(ctx, &backup.DeleteBackupVaultAccessPolicyInput{BackupVaultName: aws.String("pv")})
	must(t, err)
	_, err = c.GetBackupVaultAccessPolicy(ctx, &backup.GetBackupVaultAccessPolicyInput{BackupVaultName: aws.String("pv")})
	expectErr[*types.ResourceNotFoundException](t, err)
	_, err = c.DeleteBackupVaultAccessPolicy(ctx, &backup.DeleteBackupVaultAccessPolicyInput{BackupVaultName: aws.String("nope")})
	expectErr[*types.ResourceNotFoundException](t, err)
}

func TestVaultLock(t *testing.T) {
	e := start(t)
	c := e.client(acctA)
	for _, n := range []string{"gov", "comp"} {
		_, err := c.CreateBackupVault(ctx, &backup.CreateBackupVaultInput{BackupVaultName: aws.String(n)})
		must(t, err)
	}
	for _, bad := range []*backup.PutBackupVaultLockConfigurationInput{
		{MinRetentionDays: aws.Int64(0)},
		{MaxRetentionDays: aws.Int64(36501)},
		{MinRetentionDays: aws.Int64(10), MaxRetentionDays: aws.Int64(5)},
		{ChangeableForDays: aws.Int64(2)},
		{ChangeableForDays: aws.Int64(36501)},
	} {
		bad.BackupVaultName = aws.String("gov")
		_, err := c.PutBackupVaultLockConfiguration(ctx, bad)
		expectErr[*types.InvalidParameterValueException](t, err)
	}
	_, err := c.PutBackupVaultLockConfiguration(ctx, &backup.PutBackupVaultLockConfigurationInput{BackupVaultName: aws.String("nope"), MinRetentionDays: aws.Int64(1)})
	expectErr[*types.ResourceNotFoundException](t, err)

	// Governance: changeable and removable any time.
	_, err = c.PutBackupVaultLockConfiguration(ctx, &backup.PutBackupVaultLockConfigurationInput{BackupVaultName: aws.String("gov"),
		MinRetentionDays: aws.Int64(7), MaxRetentionDays: aws.Int64(30)})
	must(t, err)
	d, err := c.DescribeBackupVault(ctx, &backup.DescribeBackupVaultInput{BackupVaultName: aws.String("gov")})
	must(t, err)
	if !aws.ToBool(d.Locked) || aws.ToInt64(d.MinRetentionDays) != 7 || aws.ToInt64(d.MaxRetentionDays) != 30 || d.LockDate != nil {
		t.Fatalf("governance lock %+v", d)
	}
	e.clock.Advance(1000 * 24 * time.Hour)
	_, err = c.DeleteBackupVaultLockConfiguration(ctx, &backup.DeleteBackupVaultLockConfigurationInput{BackupVaultName: aws.String("gov")})
	must(t, err)
	d, err = c.DescribeBackupVault(ctx, &backup.DescribeBackupVaultInput{BackupVaultName: aws.String("gov")})
	must(t, err)
	if aws.ToBool(d.Locked) || d.MinRetentionDays != nil || d.MaxRetentionDays != nil {
		t.Fatalf("lock not cleared %+v", d)
	}

	// Compliance: LockDate = now + ChangeableForDays; immutable from then on.
	now := e.clock.Now()
	_, err = c.PutBackupVaultLockConfiguration(ctx, &backup.PutBackupVaultLockConfigurationInput{BackupVaultName: aws.String("comp"),
		MinRetentionDays: aws.Int64(1), ChangeableForDays: aws.Int64(3)})
	must(t, err)
	d, err = c.DescribeBackupVault(ctx, &backup.DescribeBackupVaultInput{BackupVaultName: aws.String("comp")})
	must(t, err)
	if d.LockDate == nil || d.LockDate.UnixMilli() != now.Add(72*time.Hour).UnixMilli() {
		t.Fatalf("LockDate = %v, want %v", d.LockDate, now.Add(72*time.Hour))
	}
	e.clock.Advance(71 * time.Hour) // still changeable
	_, err = c.PutBackupVaultLockConfiguration(ctx, &backup.PutBackupVaultLockConfigurationInput{BackupVaultName: aws.String("comp"),
		MinRetentionDays: aws.Int64(2), ChangeableForDays: aws.Int64(3)})
	must(t, err)
	e.clock.Advance(72 * time.Hour) // exactly the new LockDate
	_, err = c.PutBackupVaultLockConfiguration(ctx, &backup.PutBackupVaultLockConfigurationInput{BackupVaultName: aws.String("comp"), MinRetentionDays: aws.Int64(5)})
	expectErr[*types.InvalidRequestException](t, err)
	_, err = c.DeleteBackupVaultLockConfiguration(ctx, &backup.DeleteBackupVaultLockConfigurationInput{BackupVaultName: aws.String("comp")})
	expectErr[*types.InvalidRequestException](t, err)
	d, err = c.DescribeBackupVault(ctx, &backup.DescribeBackupVaultInput{BackupVaultName: aws.String("comp")})
	must(t, err)
	if aws.ToInt64(d.MinRetentionDays) != 2 || !aws.ToBool(d.Locked) {
		t.Fatalf("immutable lock changed: %+v", d)
	}
	_, err = c.DeleteBackupVaultLockConfiguration(ctx, &backup.DeleteBackupVaultLockConfigurationInput{BackupVaultName: aws.String("nope")})
	expectErr[*types.ResourceNotFoundException](t, err)
}

func TestTags(t *testing.T) {
	e := start(t)
	c := e.client(acctA)
	_, err := c.CreateBackupVault(ctx, &backup.CreateBackupVaultInput{BackupVaultName: aws.String("tv")})
	must(t, err)
	arn := vaultArn(acctA, "tv")
	_, err = c.TagResource(ctx, &backup.TagResourceInput{ResourceArn: aws.String(arn), Tags: map[string]string{"a": "1", "b": "2"}})
	must(t, err)
	_, err = c.TagResource(ctx, &backup.TagResourceInput{ResourceArn: aws.String(arn), Tags: map[string]string{"b": "3"}})
	must(t, err)
	_, err = c.UntagResource(ctx, &backup.UntagResourceInput{ResourceArn: aws.String(arn), TagKeyList: []string{"a", "missing"}})
	must(t, err)
	got, err := c.ListTags(ctx, &backup.ListTagsInput{ResourceArn: aws.String(arn)})
	must(t, err)
	if len(got.Tags) != 1 || got.Tags["b"] != "3" {
		t.Fatalf("tags %v", got.Tags)
	}
	// Recovery points are taggable too.
	rpArn := cb.RecoveryPointArn(region, acctA.id, "rp-t")
	must(t, e.store.Write(ctx, func(tx store.Tx) error {
		return tx.CreateRecoveryPoint(ctx, &cb.RecoveryPoint{Arn: rpArn, AccountID: acctA.id, Region: region, VaultName: "tv", VaultArn: arn,
			ResourceArn: "arn:aws:elasticfilesystem:us-east-1:111111111111:file-system/fs-01234567", ResourceType: "EFS", Status: "COMPLETED",
			StorageClass: "WARM", CreationDate: time.Now()})
	}))
	_, err = c.TagResource(ctx, &backup.TagResourceInput{ResourceArn: aws.String(rpArn), Tags: map[string]string{"rp": "yes"}})
	must(t, err)
	got, err = c.ListTags(ctx, &backup.ListTagsInput{ResourceArn: aws.String(rpArn)})
	must(t, err)
	if got.Tags["rp"] != "yes" {
		t.Fatalf("rp tags %v", got.Tags)
	}
	// ListTags pages.
	many := map[string]string{}
	for i := 0; i < 40; i++ {
		many[fmt.Sprintf("k%02d", i)] = "v"
	}
	_, err = c.TagResource(ctx, &backup.TagResourceInput{ResourceArn: aws.String(arn), Tags: many})
	must(t, err)
	seen := map[string]bool{}
	var token *string
	for {
		p, err := c.ListTags(ctx, &backup.ListTagsInput{ResourceArn: aws.String(arn), MaxResults: aws.Int32(7), NextToken: token})
		must(t, err)
		for k := range p.Tags {
			if seen[k] {
				t.Fatalf("tag %s repeated", k)
			}
			seen[k] = true
		}
		if p.NextToken == nil {
			break
		}
		token = p.NextToken
	}
	if len(seen) != 41 {
		t.Fatalf("paged %d tags, want 41", len(seen))
	}
	over := map[string]string{}
	for i := 0; i < 10; i++ {
		over[fmt.Sprintf("x%d", i)] = "v"
	}
	_, err = c.TagResource(ctx, &backup.TagResourceInput{ResourceArn: aws.String(arn), Tags: over})
	expectErr[*types.LimitExceededException](t, err)
	_, err = c.TagResource(ctx, &backup.TagResourceInput{ResourceArn: aws.String(arn), Tags: map[string]string{"aws:reserved": "x"}})
	expectErr[*types.InvalidParameterValueException](t, err)

	for _, tc := range []struct {
		arn  string
		kind string
	}{
		{vaultArn(acctA, "missing"), "notfound"},
		{cb.RecoveryPointArn(region, acctA.id, "nope"), "notfound"},
		{"arn:aws:backup:eu-west-1:111111111111:backup-vault:tv", "notfound"},
		{"arn:aws:ec2:us-east-1::snapshot/snap-0123", "invalid"},
		{"arn:aws:backup:us-east-1:111111111111:report-plan:x", "invalid"},
		{"not-an-arn", "invalid"},
	} {
		_, err := c.TagResource(ctx, &backup.TagResourceInput{ResourceArn: aws.String(tc.arn), Tags: map[string]string{"a": "b"}})
		_, err2 := c.ListTags(ctx, &backup.ListTagsInput{ResourceArn: aws.String(tc.arn)})
		_, err3 := c.UntagResource(ctx, &backup.UntagResourceInput{ResourceArn: aws.String(tc.arn), TagKeyList: []string{"a"}})
		for _, err := range []error{err, err2, err3} {
			if tc.kind == "notfound" {
				expectErr[*types.ResourceNotFoundException](t, err)
			} else {
				expectErr[*types.InvalidParameterValueException](t, err)
			}
		}
	}
}

func TestSupportedResourceTypes(t *testing.T) {
	e := start(t)
	out, err := e.client(acctA).GetSupportedResourceTypes(ctx, &backup.GetSupportedResourceTypesInput{})
	must(t, err)
	if len(out.ResourceTypes) != 1 || out.ResourceTypes[0] != "EFS" {
		t.Fatalf("types %v", out.ResourceTypes)
	}
}

func TestUnsupportedOperation(t *testing.T) {
	e := start(t)
	// Frameworks (Backup Audit Manager) are not part of Coffer.
	_, err := e.client(acctA).ListFrameworks(ctx, &backup.ListFrameworksInput{})
	if err == nil {
		t.Fatal("ListFrameworks succeeded without a handler")
	}
	status, code, body := e.raw(&acctA, "GET", "/audit/frameworks", nil, nil)
	if status != 404 || code != "UnknownOperationException" || !strings.Contains(string(body), "operation ListFrameworks is not supported by Coffer") {
		t.Fatalf("status %d code %s body %s", status, code, body)
	}
}
