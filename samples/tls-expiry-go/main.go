// TCP reachability and TLS certificate expiry of host:port, standard library only.
//
// It connects (the latency is the TCP connect time), then, unless "tls" is false, does a TLS
// handshake and reads the leaf certificate: days left, subject, issuer, names, and whether the
// chain verifies against the system roots. Verification is reported, not required, so a
// self-signed or internal certificate can still be watched for expiry. The invocation fails
// (error kinds Unreachable, HandshakeFailed, CertificateExpired, CertificateExpiring) when the port does not answer,
// the handshake fails, or fewer than min_days are left.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math"
	"net"
	"strconv"
	"time"

	"runwarm.dev/runwarm"
)

type Event struct {
	Host       string `json:"host"`
	Port       int    `json:"port"`
	TLS        *bool  `json:"tls"`
	ServerName string `json:"server_name"`
	MinDays    *int   `json:"min_days"`
	TimeoutMs  int    `json:"timeout_ms"`
}

type Certificate struct {
	Subject     string    `json:"subject"`
	Issuer      string    `json:"issuer"`
	DNSNames    []string  `json:"dns_names"`
	NotBefore   time.Time `json:"not_before"`
	NotAfter    time.Time `json:"not_after"`
	DaysLeft    float64   `json:"days_left"`
	Verified    bool      `json:"verified"`
	VerifyError string    `json:"verify_error,omitempty"`
}

type TLSInfo struct {
	HandshakeMs float64     `json:"handshake_ms"`
	Version     string      `json:"version"`
	CipherSuite string      `json:"cipher_suite"`
	Certificate Certificate `json:"certificate"`
	ChainLength int         `json:"chain_length"`
}

type Result struct {
	Host      string   `json:"host"`
	Port      int      `json:"port"`
	Address   string   `json:"address"`
	Reachable bool     `json:"reachable"`
	ConnectMs float64  `json:"connect_ms"`
	TLS       *TLSInfo `json:"tls,omitempty"`
	MinDays   int      `json:"min_days,omitempty"`
	OK        bool     `json:"ok"`
}

// CheckFailed is an error with a stable kind (runwarm.ErrorKinder).
type CheckFailed struct {
	Kind    string
	Message string
}

func (e *CheckFailed) Error() string     { return e.Message }
func (e *CheckFailed) ErrorKind() string { return e.Kind }

func ms(d time.Duration) float64 { return math.Round(float64(d.Microseconds())/10) / 100 }

func check(ctx context.Context, e Event) (*Result, error) {
	if e.Host == "" {
		return nil, &CheckFailed{"InvalidInput", "host is required"}
	}
	if e.Port == 0 {
		e.Port = 443
	}
	timeout := 3 * time.Second
	if e.TimeoutMs > 0 {
		timeout = time.Duration(e.TimeoutMs) * time.Millisecond
	}
	minDays := 14
	if e.MinDays != nil {
		minDays = *e.MinDays
	}
	addr := net.JoinHostPort(e.Host, strconv.Itoa(e.Port))
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	res := &Result{Host: e.Host, Port: e.Port}
	started := time.Now()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, &CheckFailed{"Unreachable", fmt.Sprintf("%s is not reachable: %v", addr, err)}
	}
	defer conn.Close()
	res.Reachable, res.ConnectMs, res.Address = true, ms(time.Since(started)), conn.RemoteAddr().String()
	if e.TLS != nil && !*e.TLS {
		res.OK = true
		return res, nil
	}

	name := e.ServerName
	if name == "" {
		name = e.Host
	}
	// The chain is verified below, by hand, so that an untrusted certificate is reported with
	// its expiry rather than refused.
	config := &tls.Config{InsecureSkipVerify: true}
	if net.ParseIP(name) == nil {
		config.ServerName = name
	}
	tc := tls.Client(conn, config)
	started = time.Now()
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, &CheckFailed{"HandshakeFailed", fmt.Sprintf("TLS handshake with %s failed: %v", addr, err)}
	}
	state := tc.ConnectionState()
	info := &TLSInfo{
		HandshakeMs: ms(time.Since(started)),
		Version:     tls.VersionName(state.Version),
		CipherSuite: tls.CipherSuiteName(state.CipherSuite),
		ChainLength: len(state.PeerCertificates),
	}
	leaf := state.PeerCertificates[0]
	intermediates := x509.NewCertPool()
	for _, c := range state.PeerCertificates[1:] {
		intermediates.AddCert(c)
	}
	_, verr := leaf.Verify(x509.VerifyOptions{DNSName: name, Intermediates: intermediates})
	info.Certificate = Certificate{
		Subject:   leaf.Subject.String(),
		Issuer:    leaf.Issuer.String(),
		DNSNames:  leaf.DNSNames,
		NotBefore: leaf.NotBefore.UTC(),
		NotAfter:  leaf.NotAfter.UTC(),
		DaysLeft:  math.Round(time.Until(leaf.NotAfter).Hours()/24*10) / 10,
		Verified:  verr == nil,
	}
	if verr != nil {
		info.Certificate.VerifyError = verr.Error()
	}
	res.TLS, res.MinDays = info, minDays
	if rc, ok := runwarm.FromContext(ctx); ok {
		rc.Log("info", "certificate read", map[string]any{"address": addr, "days_left": info.Certificate.DaysLeft})
	}
	if leaf.NotAfter.Before(time.Now()) {
		return nil, &CheckFailed{"CertificateExpired", fmt.Sprintf(
			"the certificate of %s (%s) expired %s", addr, info.Certificate.Subject, leaf.NotAfter.UTC().Format(time.RFC3339))}
	}
	if info.Certificate.DaysLeft < float64(minDays) {
		return nil, &CheckFailed{"CertificateExpiring", fmt.Sprintf(
			"the certificate of %s (%s) expires %s: %.1f days left, fewer than %d",
			addr, info.Certificate.Subject, leaf.NotAfter.UTC().Format(time.RFC3339), info.Certificate.DaysLeft, minDays)}
	}
	res.OK = true
	return res, nil
}

func main() { runwarm.Start(check) }
