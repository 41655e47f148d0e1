package policy

// Every key whose name ends in Env (connection.dsnEnv, s3.credentials.accessKeyIdEnv, ...)
// names an environment variable: a secret is named in the file, never written in it.

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"
)

// envNameRe is what a POSIX shell accepts as an environment variable's name.
var envNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// accessKeyIDRe matches AWS access key ids (long-term AKIA, temporary ASIA, ...).
var accessKeyIDRe = regexp.MustCompile(`^(AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA|ASCA)[A-Z0-9]{12,}$`)

// validateEnvNames checks every key whose name ends in "Env" (accessKeyIdEnv, dsnEnv, ...):
// its value must name an environment variable. The value itself is never repeated: a key put
// where its variable's name belongs is the mistake this catches, and errors are printed.
func validateEnvNames(c *Config, add addFunc) {
	walkEnvKeys(reflect.ValueOf(c).Elem(), "", func(key, v string) {
		switch {
		case v == "":
		case !envNameRe.MatchString(v):
			add(key, "must be the name of an environment variable (letters, digits and '_', not starting with a digit); "+
				"the value given is not one and is not repeated here, in case it is a secret")
		case LooksLikeCredential(v):
			add(key, "looks like a credential rather than the name of an environment variable: put the credential in "+
				"an environment variable and name the variable here (the value is not repeated)")
		}
	})
}

// IsEnvName reports whether v can name an environment variable and does not look like a
// credential: what may be printed of a *Env value.
func IsEnvName(v string) bool { return envNameRe.MatchString(v) && !LooksLikeCredential(v) }

// LooksLikeCredential reports whether a would-be variable name looks like a key instead: an
// AWS access key id, or a long random-looking word (mixed case and digits, no '_'), as a
// secret access key without '/' or '+' is.
func LooksLikeCredential(v string) bool {
	if accessKeyIDRe.MatchString(v) {
		return true
	}
	if len(v) < 20 || strings.Contains(v, "_") {
		return false
	}
	var lower, upper, digit bool
	for _, r := range v {
		switch {
		case r >= 'a' && r <= 'z':
			lower = true
		case r >= 'A' && r <= 'Z':
			upper = true
		case r >= '0' && r <= '9':
			digit = true
		}
	}
	return lower && upper && digit
}

// walkEnvKeys calls f with the key path (as validation errors spell it) and value of every
// string field whose YAML key ends in "Env".
func walkEnvKeys(v reflect.Value, path string, f func(key, v string)) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			walkEnvKeys(v.Elem(), path, f)
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			walkEnvKeys(v.Index(i), fmt.Sprintf("%s[%d]", path, i), f)
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			sf := t.Field(i)
			name := tagName(sf)
			if !sf.IsExported() || name == "-" || name == "" {
				continue
			}
			p := name
			if path != "" {
				p = path + "." + name
			}
			fv := v.Field(i)
			if fv.Kind() == reflect.String && strings.HasSuffix(name, "Env") {
				f(p, fv.String())
				continue
			}
			walkEnvKeys(fv, p, f)
		}
	}
}
