// Package s3bucket is the resource plugin of S3-compatible buckets, AWS
// resource type S3: a bucket on one of the configured S3 endpoints
// (config s3_endpoints and buckets, or created by a restore with
// NewBucket=true). Backups list the bucket and stream every object's bytes,
// headers, user metadata and tags into the repository, incrementally
// against the parent snapshot; restores write a snapshot's objects into a
// new or an existing bucket with AWS's semantics (existing keys are
// skipped) plus Coffer's ConflictPolicy and DestinationPrefix. The
// repository layout is described in docs/design/s3-buckets.md.
package s3bucket

import (
	"net"
	"regexp"
	"strings"

	"coffer/internal/backup"
)

// ResourceType is the AWS resource type of buckets.
const ResourceType = "S3"

// AttrEndpoint is the attribute naming a bucket's endpoint (s3_endpoints[].id).
const AttrEndpoint = "endpoint"

var (
	bucketRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	endpointRE = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)
)

// ValidBucketName reports whether name follows the S3 bucket naming rules:
// 3 to 63 lower-case letters, digits, '.' and '-', starting and ending
// with a letter or digit, no "..", ".-" or "-.", not an IP address, none of
// the reserved prefixes and suffixes.
func ValidBucketName(name string) bool {
	if !bucketRE.MatchString(name) || strings.Contains(name, "..") || strings.Contains(name, ".-") || strings.Contains(name, "-.") {
		return false
	}
	if net.ParseIP(name) != nil {
		return false
	}
	for _, p := range []string{"xn--", "sthree-", "amzn-s3-demo-"} {
		if strings.HasPrefix(name, p) {
			return false
		}
	}
	for _, s := range []string{"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"} {
		if strings.HasSuffix(name, s) {
			return false
		}
	}
	return true
}

// ValidEndpointID reports whether id is an endpoint id ([a-z0-9-]{1,32}).
func ValidEndpointID(id string) bool { return endpointRE.MatchString(id) }

// ARN is a bucket's ARN, arn:aws:s3:::NAME (S3 ARNs carry no region or
// account).
func ARN(name string) string { return "arn:aws:s3:::" + name }

// ParseARN returns the bucket an ARN names. Object ARNs (with a '/') and
// access points are not buckets. The name is checked against the naming
// rules loosely (no '/', ':' or white space): an unknown bucket is a
// missing resource, not a malformed ARN.
func ParseARN(arn string) (string, bool) {
	name, ok := strings.CutPrefix(arn, "arn:aws:s3:::")
	if !ok || name == "" || len(name) > 255 || strings.ContainsAny(name, "/: \t\r\n") {
		return "", false
	}
	return name, true
}

// NewResource is the resource of a configured bucket on endpoint.
func NewResource(region, account, name, endpoint string, tags map[string]string) *backup.Resource {
	return &backup.Resource{AccountID: account, Region: region, Type: ResourceType, ID: name, Arn: ARN(name),
		Name: name, Tags: tags, Attrs: map[string]string{AttrEndpoint: endpoint}}
}
