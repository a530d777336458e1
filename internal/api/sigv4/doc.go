// Package sigv4 verifies AWS Signature Version 4 header authentication on
// incoming requests to Coffer's AWS Backup–compatible API.
//
// Verifier.Verify accepts a request only when all of the following hold:
//
//   - There is exactly one Authorization header, of the form
//     "AWS4-HMAC-SHA256 Credential=AKID/YYYYMMDD/region/service/aws4_request,
//     SignedHeaders=a;b;c, Signature=<64 hex>", each part present exactly once
//     (commas with or without following spaces). SignedHeaders is lowercase,
//     strictly sorted and free of duplicates. No presigned (query-string)
//     authentication parameter (X-Amz-Algorithm, X-Amz-Credential,
//     X-Amz-Signature, X-Amz-SignedHeaders, X-Amz-Date, X-Amz-Expires,
//     X-Amz-Security-Token) appears in the query: presigned URLs are not
//     supported, and credentials in both places are refused.
//   - The request time is X-Amz-Date (ISO 8601 basic, "20060102T150405Z"), or,
//     when X-Amz-Date is absent, the HTTP Date header (IMF-fixdate, or RFC 1123
//     with a numeric zone as botocore sends it). Whichever is
//     used must be listed in SignedHeaders; so must host and every x-amz-*
//     header present on the request.
//   - The credential scope's date equals the request time's date, its service
//     equals Verifier.Service, its region equals Verifier.Region (when set), and
//     its terminator is "aws4_request".
//   - The request time is within ±MaxSkew (default 15 minutes, inclusive) of
//     Verifier.Clock. Outside the window the error is InvalidSignatureException
//     with AWS's "Signature expired: ... is now earlier than ..." or "Signature
//     not yet current: ... is still later than ..." message.
//   - No X-Amz-Security-Token header is present (temporary credentials cannot
//     be validated here), and the access key id is known to Verifier.Creds.
//   - The payload hash is the hex SHA-256 of the body. If the client sent
//     X-Amz-Content-SHA256, its value is used in the canonical request, but it
//     must equal the body's SHA-256; UNSIGNED-PAYLOAD and STREAMING-* values are
//     refused.
//   - The signature equals HMAC-SHA256 over the string to sign computed from the
//     canonical request, with the signing key derived from the secret
//     ("AWS4"+secret → date → region → service → "aws4_request"), compared in
//     constant time.
//
// The canonical request is built from the request as received:
//
//   - Method as sent.
//   - Canonical URI from the raw request-target path (r.RequestURI, or
//     r.URL.Opaque / r.URL.EscapedPath() when RequestURI is empty), never the
//     decoded path: every byte outside A-Za-z0-9-_.~/ is percent-encoded
//     again (non-S3 double encoding: "%3A" → "%253A", an over-encoded
//     "%61" → "%2561"), as botocore, aws-sdk-go-v2 and AWS compute it; no
//     signer decodes the path first. botocore removes dot segments and empty
//     segments before encoding (encoded dots such as "%2e%2e" are not dot
//     segments); aws-sdk-go-v2 does not. botocore's HTTP transport (urllib3)
//     upper-cases the hex digits of escapes after signing, so the
//     dot-normalised form with lower-case escapes is tried too. Both
//     normalised forms are functions of the received path, so the HTTP layer
//     must route on the same normalised form or refuse such paths.
//   - Canonical query, in one of three forms: (1) the SigV4 rule: the raw
//     query split on "&", each key and value percent-decoded ("+" is a
//     space, as url.ParseQuery reads it) and re-encoded per RFC 3986, pairs
//     sorted by encoded key then encoded value; (2) botocore's rule for a
//     query that is part of the URL it signs: the raw pieces as sent, cut at
//     the first "=" ("k" → "k=", an empty piece → "="), sorted by raw key then
//     raw value, not decoded (a literal "+" stays "+", "%2b" stays "%2b");
//     (3) form 2 with lower-case escapes (urllib3 again). Forms 2 and 3 bind
//     the bytes of each piece, so no form lets one signature cover two
//     queries that decode differently. Invalid escapes or ";" separators are
//     refused, so the verified parameters are exactly what url.ParseQuery
//     yields.
//   - Canonical headers: exactly the headers named in SignedHeaders; host is
//     r.Host as received (with port); repeated header lines are joined with
//     ","; values are trimmed and runs of spaces collapsed. botocore also
//     collapses tabs and other ASCII whitespace while aws-sdk-go-v2 collapses
//     only spaces; when a value contains such whitespace both forms are tried.
//     A listed header that is absent is an IncompleteSignatureException.
//
// Every combination of these forms is tried, the AWS form first (at most
// 3 × 3 × 2 HMACs, and duplicates are skipped); a request passes when one of
// them gives the signature. What cannot be verified is a request that
// was changed after signing: urllib3 with escapes of both cases in one
// request, python-requests (which decodes "%61" to "a" and "%2e" to "." before
// sending), or botocore's session dropping ";params" from the last path
// segment. They cannot verify against AWS either.
//
// Every failure is an *Error with an AWS exception name in Code (for the
// X-Amzn-ErrorType response header) and HTTP status 403, following the AWS
// JSON services: MissingAuthenticationTokenException, IncompleteSignatureException,
// UnrecognizedClientException or InvalidSignatureException. Error messages never
// contain the secret or any derived key.
//
// Clock skew: aws-sdk-go-v2 corrects its clock when it receives
// InvalidSignatureException (one of its clock-skew codes; RequestExpired is
// not) together with a response Date header that differs from its own clock
// by more than 4 minutes. The HTTP layer must therefore send a Date header
// taken from the same clock as the Verifier (net/http adds one from the wall
// clock when the handler does not). botocore (checked: 1.43.11) does not
// correct skew at all; the expired-signature message follows AWS's wording
// for tools and people that read it.
package sigv4
