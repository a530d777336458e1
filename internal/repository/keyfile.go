package repository

import (
	"bytes"
	"encoding/json"
	"fmt"

	"coffer/internal/repository/crypto"
)

type keyMaterial struct {
	repoID  [16]byte
	dataKey []byte
	idKey   []byte
	gearKey []byte
}

const (
	keyMagic    = "CFKEY\x00"
	configMagic = "CFCFG\x00"
	keyWrapCtx  = "coffer 2026 key file wrapping key v1"
	configAAD   = "coffer config v1"
	payloadSize = 16 + 3*crypto.KeySize
	maxKeyFile  = 4096
	maxConfig   = 64 << 10
)

func wrapKey(master []byte) (*crypto.AEAD, error) {
	if len(master) != crypto.KeySize {
		return nil, fmt.Errorf("repository: master key must be %d bytes, got %d", crypto.KeySize, len(master))
	}
	return crypto.NewAEAD(crypto.DeriveKey(keyWrapCtx, master))
}

func encodeKeyFile(w *crypto.AEAD, km keyMaterial) []byte {
	payload := make([]byte, 0, payloadSize)
	payload = append(payload, km.repoID[:]...)
	payload = append(payload, km.dataKey...)
	payload = append(payload, km.idKey...)
	payload = append(payload, km.gearKey...)
	hdr := []byte(keyMagic + "\x01")
	return w.Seal(append([]byte(nil), hdr...), payload, hdr)
}

// DecodeKeyFile opens a key file with the master key.
func decodeKeyFile(w *crypto.AEAD, b []byte) (keyMaterial, error) {
	var km keyMaterial
	if len(b) > maxKeyFile || len(b) < len(keyMagic)+1 || string(b[:len(keyMagic)]) != keyMagic {
		return km, fmt.Errorf("%w: not a key file", ErrCorrupt)
	}
	if b[len(keyMagic)] != 1 {
		return km, fmt.Errorf("%w: unknown key file version %d", ErrCorrupt, b[len(keyMagic)])
	}
	hdr := b[:len(keyMagic)+1]
	p, err := w.Open(nil, b[len(hdr):], hdr)
	if err != nil {
		return km, fmt.Errorf("%w: %w", ErrWrongKey, err)
	}
	if len(p) != payloadSize {
		return km, fmt.Errorf("%w: key payload of %d bytes", ErrCorrupt, len(p))
	}
	copy(km.repoID[:], p[:16])
	km.dataKey = p[16:48]
	km.idKey = p[48:80]
	km.gearKey = p[80:112]
	return km, nil
}

// decodeConfig authenticates and decodes the config object.
func decodeConfig(cfgBytes []byte, km keyMaterial) (Config, error) {
	var cfg Config
	hdrLen := len(configMagic) + 1 + 16
	if len(cfgBytes) > maxConfig || len(cfgBytes) < hdrLen || string(cfgBytes[:len(configMagic)]) != configMagic || cfgBytes[len(configMagic)] != 1 {
		return cfg, fmt.Errorf("config: %w: bad header", ErrCorrupt)
	}
	if !bytes.Equal(cfgBytes[len(configMagic)+1:hdrLen], km.repoID[:]) {
		return cfg, fmt.Errorf("config belongs to another repository than the key: %w", ErrCorrupt)
	}
	a, err := crypto.NewAEAD(km.dataKey)
	if err != nil {
		return cfg, err
	}
	cj, err := a.Open(nil, cfgBytes[hdrLen:], append([]byte(configAAD), cfgBytes[:hdrLen]...))
	if err != nil {
		return cfg, fmt.Errorf("config: %w: %w", ErrCorrupt, err)
	}
	if err := json.Unmarshal(cj, &cfg); err != nil {
		return cfg, fmt.Errorf("config: %w: %v", ErrCorrupt, err)
	}
	if cfg.Version != FormatVersion || cfg.Cipher != CipherAES256GCM || cfg.IDHash != IDBlake3Keyed || cfg.Chunker != ChunkerFastCDC {
		return cfg, fmt.Errorf("unsupported format version %d (%s, %s, %s)", cfg.Version, cfg.Cipher, cfg.IDHash, cfg.Chunker)
	}
	if err := cfg.ChunkSize.Validate(); err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	return cfg, nil
}

// encodeConfig seals the config object.
func encodeConfig(cfg Config, km keyMaterial, a *crypto.AEAD) ([]byte, error) {
	cj, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	hdr := append([]byte(configMagic+"\x01"), km.repoID[:]...)
	return a.Seal(append([]byte(nil), hdr...), cj, append([]byte(configAAD), hdr...)), nil
}
