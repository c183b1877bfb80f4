package cluster

import (
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math/big"
	"net"
	"time"

	"google.golang.org/grpc/credentials"
)

// remoteHandshakeTimeout bounds a connection's TLS handshake on the
// server (grpc.ConnectionTimeout), so that a peer that connects and says
// nothing holds nothing for long: gRPC's default is 120 s.
const remoteHandshakeTimeout = 5 * time.Second

// remoteTLS is mutual TLS between nodes with one key pair that every node
// derives from the cluster key: each side presents a self-signed
// certificate for the derived public key and accepts only a peer whose
// certificate carries that public key. The TLS handshake proves that the
// peer holds the private key, hence the cluster key. Names, chains and
// validity dates are not checked: the pinned key is the whole trust, and
// there is nothing to renew; changing the cluster key changes it.
type remoteTLS struct {
	cert   tls.Certificate
	public ed25519.PublicKey
	// refuse is told of each peer that fails the server's handshake.
	refuse func(addr, why string, attrs ...any)
}

// newRemoteTLS derives the key pair from seed (32 bytes) and makes its
// certificate.
func newRemoteTLS(seed []byte) (*remoteTLS, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, errors.New("seed of the wrong size")
	}
	private := ed25519.NewKeyFromSeed(seed)
	public := private.Public().(ed25519.PublicKey)
	template := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		// Fixed dates: they are not checked, and a fixed certificate is
		// the same on every node.
		NotBefore:   time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:    time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    []string{"orderengine-remote"},
	}
	der, err := x509.CreateCertificate(nil, template, template, public, private)
	if err != nil {
		return nil, err
	}
	return &remoteTLS{cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: private}, public: public}, nil
}

// verify accepts a peer whose first certificate carries the derived public
// key. The handshake has already checked that the peer signed with the
// matching private key.
func (t *remoteTLS) verify(rawCerts [][]byte, _ [][]*x509.Certificate) error {
	if len(rawCerts) == 0 {
		return errors.New("no certificate")
	}
	cert, err := x509.ParseCertificate(rawCerts[0])
	if err != nil {
		return errors.New("a certificate that does not parse")
	}
	if pub, ok := cert.PublicKey.(ed25519.PublicKey); !ok || !pub.Equal(t.public) {
		return errors.New("a certificate for another key")
	}
	return nil
}

func (t *remoteTLS) config() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{t.cert},
		// Chains and names are replaced by the pinned key (verify).
		InsecureSkipVerify:    true,
		VerifyPeerCertificate: t.verify,
	}
}

func (t *remoteTLS) clientCredentials() credentials.TransportCredentials {
	return credentials.NewTLS(t.config())
}

func (t *remoteTLS) serverCredentials() credentials.TransportCredentials {
	cfg := t.config()
	cfg.ClientAuth = tls.RequireAnyClientCert
	return &loggedServerCredentials{TransportCredentials: credentials.NewTLS(cfg), t: t}
}

// loggedServerCredentials reports the peers that fail the server's
// handshake: gRPC would only tell its own logger, which remote silences.
type loggedServerCredentials struct {
	credentials.TransportCredentials
	t *remoteTLS
}

func (c *loggedServerCredentials) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := c.TransportCredentials.ServerHandshake(raw)
	if err != nil && c.t.refuse != nil {
		c.t.refuse(raw.RemoteAddr().String(), "TLS handshake failed", "err", err)
	}
	return conn, info, err
}

func (c *loggedServerCredentials) Clone() credentials.TransportCredentials {
	return &loggedServerCredentials{TransportCredentials: c.TransportCredentials.Clone(), t: c.t}
}
