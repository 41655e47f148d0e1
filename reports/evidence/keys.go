package evidence

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Key file names GenerateKey writes.
const (
	PrivateKeyFile = "firedrill-evidence.key"
	PublicKeyFile  = "firedrill-evidence.pub"
)

// ErrKey marks a key file that is missing, unreadable as a key, or not Ed25519: a configuration
// error, not an environment one.
var ErrKey = errors.New("invalid key")

// Signer signs envelopes with an Ed25519 private key.
type Signer struct {
	key   ed25519.PrivateKey
	keyID string
}

// KeyID is the hex SHA-256 of the signer's PKIX public key: the keyid in its signatures.
func (s *Signer) KeyID() string { return s.keyID }

func (s *Signer) sign(pae []byte) Signature {
	return Signature{KeyID: s.keyID, Sig: base64.StdEncoding.EncodeToString(ed25519.Sign(s.key, pae))}
}

// Verifier holds the public keys whose signatures are trusted, by key id.
type Verifier struct {
	keys map[string]ed25519.PublicKey
}

// KeyIDs lists the trusted key ids.
func (v *Verifier) KeyIDs() []string {
	out := make([]string, 0, len(v.keys))
	for id := range v.keys {
		out = append(out, id)
	}
	return out
}

// KeyID returns the key id of an Ed25519 public key: the hex SHA-256 of its PKIX DER encoding.
func KeyID(pub ed25519.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("while encoding public key: %w", err)
	}
	return sha256Hex(der), nil
}

// GenerateKey writes a new Ed25519 key pair into dir: the private key as PKCS#8 PEM (mode 0600)
// and the public key as PKIX PEM. It never overwrites an existing key.
func GenerateKey(dir string) (privPath, pubPath string, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("while generating an Ed25519 key: %w", err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", "", fmt.Errorf("while encoding the private key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", "", fmt.Errorf("while encoding the public key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("while creating key directory %s: %w", dir, err)
	}
	privPath, pubPath = filepath.Join(dir, PrivateKeyFile), filepath.Join(dir, PublicKeyFile)
	for _, p := range []string{privPath, pubPath} {
		if _, err := os.Lstat(p); err == nil {
			return "", "", fmt.Errorf("%w: %s already exists; move it away to make a new key", ErrKey, p)
		}
	}
	if err := writeNew(privPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}), 0o600); err != nil {
		return "", "", err
	}
	if err := writeNew(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		return "", "", err
	}
	return privPath, pubPath, nil
}

func writeNew(p string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("while creating %s: %w", p, err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("while writing %s: %w", p, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("while writing %s: %w", p, err)
	}
	return f.Close()
}

func readPEM(path, want string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: while reading %s: %w", ErrKey, path, err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != want {
		return nil, fmt.Errorf("%w: %s holds no PEM %q block", ErrKey, path, want)
	}
	return blk.Bytes, nil
}

// LoadSigner reads a PKCS#8 PEM Ed25519 private key.
func LoadSigner(path string) (*Signer, error) {
	der, err := readPEM(path, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrKey, path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: %s is a %T, not an Ed25519 key", ErrKey, path, k)
	}
	id, err := KeyID(priv.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	return &Signer{key: priv, keyID: id}, nil
}

// LoadVerifier reads PKIX PEM Ed25519 public keys; a record signed by any of them verifies.
func LoadVerifier(pubPaths ...string) (*Verifier, error) {
	if len(pubPaths) == 0 {
		return nil, fmt.Errorf("%w: no public key given", ErrKey)
	}
	v := &Verifier{keys: map[string]ed25519.PublicKey{}}
	for _, p := range pubPaths {
		der, err := readPEM(p, "PUBLIC KEY")
		if err != nil {
			return nil, err
		}
		k, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrKey, p, err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%w: %s is a %T, not an Ed25519 key", ErrKey, p, k)
		}
		id, err := KeyID(pub)
		if err != nil {
			return nil, err
		}
		v.keys[id] = pub
	}
	return v, nil
}

// check says why an envelope's signatures do not verify, or "" when one by a trusted key does.
// A signature without a key id is tried against every trusted key (DSSE makes keyid optional).
func (v *Verifier) check(env Envelope, payload []byte) string {
	if len(env.Signatures) == 0 {
		return "unsigned (no signature in the envelope)"
	}
	pae := PAE(env.PayloadType, payload)
	var unknown []string
	bad := false
	for _, s := range env.Signatures {
		sig, err := base64.StdEncoding.DecodeString(s.Sig)
		if err != nil {
			bad = true
			continue
		}
		if s.KeyID == "" {
			for _, k := range v.keys {
				if ed25519.Verify(k, pae, sig) {
					return ""
				}
			}
			bad = true
			continue
		}
		k, ok := v.keys[s.KeyID]
		if !ok {
			unknown = append(unknown, s.KeyID)
			continue
		}
		if ed25519.Verify(k, pae, sig) {
			return ""
		}
		bad = true
	}
	if bad {
		return "bad signature: the envelope does not verify with the trusted key"
	}
	return fmt.Sprintf("signed by unknown key %v (not a trusted key)", unknown)
}
