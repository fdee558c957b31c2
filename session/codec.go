package session

import (
	"crypto/cipher"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"
)

// KeySize is the size of a cookie secret: 32 random bytes.
const KeySize = chacha20poly1305.KeySize

const (
	formatV1  = 1
	keyIDSize = 4
	nonceSize = chacha20poly1305.NonceSizeX
	headSize  = 1 + keyIDSize + nonceSize
	// Overhead is how many bytes sealing adds before base64: format, key id, nonce, tag.
	Overhead = headSize + chacha20poly1305.Overhead
	// MaxSealedSize bounds the text Open accepts, so that a client cannot make the filter
	// decode and decrypt arbitrary amounts of data.
	MaxSealedSize = 64 << 10
)

var b64 = base64.RawURLEncoding

// Codec seals and opens cookie values. It is safe for use by one goroutine at a time
// per random source; inside a Wasm VM there is only one.
type Codec struct {
	keys []sealingKey // keys[0] seals; all open
	rand io.Reader
}

type sealingKey struct {
	id   [keyIDSize]byte
	aead cipher.AEAD
}

// NewCodec returns a codec for the given secrets, the first of which seals. Each must be
// KeySize bytes; random supplies nonces (crypto/rand.Reader in production).
func NewCodec(secrets [][]byte, random io.Reader) (*Codec, error) {
	if len(secrets) == 0 {
		return nil, fmt.Errorf("%w: no secret given", ErrKey)
	}
	c := &Codec{rand: random}
	seen := map[[keyIDSize]byte]bool{}
	for i, secret := range secrets {
		if len(secret) != KeySize {
			return nil, fmt.Errorf("%w: secret %d has %d bytes, want %d (generate one with: openssl rand -base64 32)", ErrKey, i+1, len(secret), KeySize)
		}
		aead, err := chacha20poly1305.NewX(secret)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrKey, err)
		}
		k := sealingKey{aead: aead}
		sum := sha256.Sum256(secret)
		copy(k.id[:], sum[:])
		if seen[k.id] {
			return nil, fmt.Errorf("%w: secret %d repeats an earlier one", ErrKey, i+1)
		}
		seen[k.id] = true
		c.keys = append(c.keys, k)
	}
	return c, nil
}

// Seal encrypts plaintext for the cookie named purpose and returns it as base64url text:
// format byte, key id, nonce, ciphertext and tag.
func (c *Codec) Seal(purpose string, plaintext []byte) (string, error) {
	k := c.keys[0]
	buf := make([]byte, headSize, headSize+len(plaintext)+chacha20poly1305.Overhead)
	buf[0] = formatV1
	copy(buf[1:], k.id[:])
	if _, err := io.ReadFull(c.rand, buf[1+keyIDSize:headSize]); err != nil {
		return "", fmt.Errorf("session: read nonce: %w", err)
	}
	sealed := k.aead.Seal(buf, buf[1+keyIDSize:headSize], plaintext, []byte(purpose))
	return b64.EncodeToString(sealed), nil
}

// Open decrypts text sealed for the cookie named purpose by any of the codec's keys.
func (c *Codec) Open(purpose, text string) ([]byte, error) {
	if len(text) > MaxSealedSize {
		return nil, fmt.Errorf("%w: %d bytes is over the limit", ErrInvalid, len(text))
	}
	raw, err := b64.DecodeString(text)
	if err != nil {
		return nil, fmt.Errorf("%w: not base64url", ErrInvalid)
	}
	if len(raw) < Overhead {
		return nil, fmt.Errorf("%w: truncated", ErrInvalid)
	}
	if raw[0] != formatV1 {
		return nil, fmt.Errorf("%w: unknown format %d", ErrInvalid, raw[0])
	}
	for _, k := range c.keys {
		if [keyIDSize]byte(raw[1:1+keyIDSize]) != k.id {
			continue
		}
		plain, err := k.aead.Open(raw[headSize:headSize], raw[1+keyIDSize:headSize], raw[headSize:], []byte(purpose))
		if err != nil {
			return nil, fmt.Errorf("%w: authentication failed (tampered, or sealed for another cookie)", ErrInvalid)
		}
		return plain, nil
	}
	return nil, fmt.Errorf("%w: sealed with a key this proxy does not have", ErrInvalid)
}
