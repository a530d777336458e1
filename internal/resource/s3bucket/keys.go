package s3bucket

import (
	"errors"
	"strings"

	"coffer/internal/repository/snapshot"
)

// Object keys are stored as snapshot node names. A key may hold any bytes
// (S3 keys are UTF-8 strings, which allows NUL), "//", a leading '/',
// "." and ".." segments; a node name may not contain '/' or NUL nor be "."
// or "..". The name of a key is its bytes under this prefix-free code:
//
//	0x00 → 0x01 0x01    0x01 → 0x01 0x02
//	'.'  → '.' ','      '/'  → '.' '-'
//	any other byte → itself
//
// Every code word sorts as the byte it stands for (0x01 0x01 < 0x01 0x02 <
// 0x02 < … < 0x2D < ".," < ".-" < 0x30 …) and none is a prefix of another,
// so names sort exactly as their keys and a key prefix maps to a name
// prefix. Decoding is exact: keys round-trip byte for byte.

// ErrBadName marks a node name that is not the encoding of a key.
var ErrBadName = errors.New("s3bucket: node name is not an encoded object key")

// EncodeKey returns the node name of key ("" for the empty key).
func EncodeKey(key string) string {
	n := 0
	for i := 0; i < len(key); i++ {
		switch key[i] {
		case 0, 1, '.', '/':
			n++
		}
	}
	if n == 0 {
		return key
	}
	var b strings.Builder
	b.Grow(len(key) + n)
	for i := 0; i < len(key); i++ {
		switch c := key[i]; c {
		case 0:
			b.WriteString("\x01\x01")
		case 1:
			b.WriteString("\x01\x02")
		case '.':
			b.WriteString(".,")
		case '/':
			b.WriteString(".-")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// DecodeKey is the inverse of EncodeKey.
func DecodeKey(name string) (string, error) {
	if !strings.ContainsAny(name, "\x01.") {
		return name, nil
	}
	var b strings.Builder
	b.Grow(len(name))
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c != 1 && c != '.' {
			b.WriteByte(c)
			continue
		}
		if i+1 >= len(name) {
			return "", ErrBadName
		}
		i++
		switch c2 := name[i]; {
		case c == 1 && c2 == 1:
			b.WriteByte(0)
		case c == 1 && c2 == 2:
			b.WriteByte(1)
		case c == '.' && c2 == ',':
			b.WriteByte('.')
		case c == '.' && c2 == '-':
			b.WriteByte('/')
		default:
			return "", ErrBadName
		}
	}
	return b.String(), nil
}

// storableKey reports whether key can be a node name once encoded.
func storableKey(key string) bool {
	return key != "" && len(EncodeKey(key)) <= snapshot.MaxNameLen
}
