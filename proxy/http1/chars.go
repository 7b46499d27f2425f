package http1

import "net/netip"

// Byte classes used by the parsers. Each table is indexed by the byte value.
var (
	// tokenTable marks tchar (RFC 9110 §5.6.2): method and field names.
	tokenTable [256]bool
	// valueTable marks field-vchar, SP and HTAB (RFC 9110 §5.5), which
	// includes obs-text; CTLs other than HTAB are excluded.
	valueTable [256]bool
	// targetTable marks the bytes allowed in a request target: visible
	// ASCII except '#'.
	targetTable [256]bool
	// hostTable marks the bytes allowed in a host name or IP literal
	// (RFC 3986 reg-name without pct-encoding, plus IP literal brackets and
	// ':' for the port).
	hostTable [256]bool
	// lowerTable maps ASCII upper case to lower case.
	lowerTable [256]byte
)

func init() {
	for c := 0; c < 256; c++ {
		b := byte(c)
		lowerTable[c] = b
		if 'A' <= b && b <= 'Z' {
			lowerTable[c] = b + ('a' - 'A')
		}
		alnum := 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9'
		tokenTable[c] = alnum || b != 0 && isIn(b, "!#$%&'*+-.^_`|~")
		valueTable[c] = b == '\t' || b >= 0x20 && b != 0x7f
		targetTable[c] = b > 0x20 && b < 0x7f && b != '#'
		hostTable[c] = alnum || b != 0 && isIn(b, "-._~!$&'()*+,;=:[]")
	}
}

func isIn(b byte, set string) bool {
	for i := 0; i < len(set); i++ {
		if set[i] == b {
			return true
		}
	}
	return false
}

// equalFold reports whether b equals s under ASCII case folding; s must be
// lower case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if lowerTable[b[i]] != s[i] {
			return false
		}
	}
	return true
}

// equalFoldBytes reports whether a and b are equal under ASCII case folding.
func equalFoldBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lowerTable[a[i]] != lowerTable[b[i]] {
			return false
		}
	}
	return true
}

// equalFoldString is equalFold for a name in any case.
func equalFoldString(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if lowerTable[b[i]] != lowerTable[s[i]] {
			return false
		}
	}
	return true
}

// trimOWS removes leading and trailing SP and HTAB.
func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// nextToken splits a comma-separated list: it returns the first element
// with OWS trimmed and the rest after the comma. Empty elements are returned
// as empty slices.
func nextToken(list []byte) (tok, rest []byte) {
	for i := 0; i < len(list); i++ {
		if list[i] == ',' {
			return trimOWS(list[:i]), list[i+1:]
		}
	}
	return trimOWS(list), nil
}

// hasToken reports whether the comma-separated list contains tok (lower
// case) under case folding.
func hasToken(list []byte, tok string) bool {
	for len(list) > 0 {
		var t []byte
		t, list = nextToken(list)
		if equalFold(t, tok) {
			return true
		}
	}
	return false
}

// validHost checks host [ ":" port ] as used in a Host field, an
// authority-form target and the authority of an absolute-form target.
func validHost(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	hostEnd := len(b)
	if b[0] == '[' {
		end := -1
		for i := 1; i < len(b); i++ {
			if b[i] == ']' {
				end = i
				break
			}
			if !isHex(b[i]) && b[i] != ':' && b[i] != '.' {
				return false
			}
		}
		if end < 2 {
			return false
		}
		if a, err := netip.ParseAddr(string(b[1:end])); err != nil || !a.Is6() || a.Zone() != "" {
			return false
		}
		hostEnd = end + 1
		if hostEnd < len(b) && b[hostEnd] != ':' {
			return false
		}
	} else {
		for i := 0; i < len(b); i++ {
			c := b[i]
			if c == ':' {
				hostEnd = i
				break
			}
			if !hostTable[c] || c == '[' || c == ']' {
				return false
			}
		}
		if hostEnd == 0 {
			return false
		}
	}
	if hostEnd < len(b) { // ":" port, port may be empty (RFC 3986)
		for _, c := range b[hostEnd+1:] {
			if c < '0' || c > '9' {
				return false
			}
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
