"""A throw-away certificate authority for tests, made with the openssl tool.

    from testca import TestCA
    ca = TestCA()                                   # a new CA in a temp dir
    cert, key = ca.server_cert(['localhost', '127.0.0.1'])
    bad, badkey = ca.wrong_host_cert()              # valid chain, other name
    ca.ca_file                                      # PEM to trust ([smtp] ca_file)
    ssl_ctx = ca.server_context(cert, key)          # ssl.SSLContext for a server
    ca.cleanup()

A CA may also live in a folder the caller owns (removed by the caller):

    ca = TestCA('/tmp/x/ca')                        # ca.cert == ca.ca_file
    cert, key = ca.issue('imap', ['localhost'])     # named files in that folder

Keys are ECDSA P-256 (fast to make); certificates are valid from now for
two days and carry subjectAltName entries (DNS names, or IP
addresses for literals) and serverAuth, as a real server certificate
would. Every file lives in one private temporary folder that cleanup()
removes. Used by the SMTP and IMAP tests (smtpsink.py, the IMAP server
tests), and usable for an HTTPS sms server.
"""
import ipaddress
import os
import shutil
import ssl
import subprocess
import tempfile


def _run(args, cwd):
    subprocess.run(['openssl'] + args, cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=30)


class TestCA:
    def __init__(self, folder=None, name='eimzad test CA'):
        if folder is None:
            self.dir = tempfile.mkdtemp(prefix='eimza-ca-')
        else:
            self.dir = folder
            os.makedirs(folder, exist_ok=True)
        os.chmod(self.dir, 0o700)
        self.ca_file = os.path.join(self.dir, 'ca.pem')
        self.ca_key = os.path.join(self.dir, 'ca.key')
        self._serial = 1
        _run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
              '-nodes', '-keyout', self.ca_key, '-out', self.ca_file, '-days', '2',
              '-subj', '/CN=' + name,
              '-addext', 'basicConstraints=critical,CA:TRUE',
              '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], self.dir)

    def server_cert(self, hosts, name=None):
        """A certificate signed by this CA for the given host names / IPs.
        Returns (cert_path, key_path)."""
        hosts = list(hosts)
        base = name or 'server%d' % self._serial
        self._serial += 1
        key = os.path.join(self.dir, base + '.key')
        csr = os.path.join(self.dir, base + '.csr')
        cert = os.path.join(self.dir, base + '.pem')
        ext = os.path.join(self.dir, base + '.ext')
        sans = []
        for h in hosts:
            try:
                ipaddress.ip_address(h)
                sans.append('IP:' + h)
            except ValueError:
                sans.append('DNS:' + h)
        with open(ext, 'w') as f:
            f.write('basicConstraints=critical,CA:FALSE\n'
                    'keyUsage=critical,digitalSignature\n'
                    'extendedKeyUsage=serverAuth\n'
                    'subjectAltName=%s\n' % ','.join(sans))
        _run(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
              '-nodes', '-keyout', key, '-out', csr, '-subj', '/CN=' + hosts[0]], self.dir)
        _run(['x509', '-req', '-in', csr, '-CA', self.ca_file, '-CAkey', self.ca_key,
              '-set_serial', str(1000 + self._serial), '-days', '2', '-extfile', ext,
              '-out', cert], self.dir)
        os.chmod(key, 0o600)
        return cert, key

    @property
    def cert(self):
        """The CA certificate (PEM): what a client trusts."""
        return self.ca_file

    def issue(self, name, hosts):
        """server_cert() with the files named after `name`."""
        return self.server_cert(hosts, name=name)

    def wrong_host_cert(self):
        """A valid certificate from this CA for a name no test connects to."""
        return self.server_cert(['wrong-host.invalid'], name='wronghost')

    def server_context(self, cert, key, sni_log=None):
        """An ssl.SSLContext for a server presenting cert. If sni_log is a
        list, the server name each client asks for (SNI) is appended."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(cert, key)
        if sni_log is not None:
            def on_sni(sslobj, server_name, _ctx):
                sni_log.append(server_name)
                return None
            ctx.sni_callback = on_sni
        return ctx

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)
