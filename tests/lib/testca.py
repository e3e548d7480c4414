"""A throw-away certificate authority for TLS tests, made with the openssl tool.

    from testca import TestCA
    ca = TestCA()                                # a new CA in a private temp dir
    ca = TestCA(tmpdir)                          # ... or in a folder you remove
    cert, key = ca.issue('imap', ['localhost', '127.0.0.1'])
    cert, key = ca.server_cert(['localhost'])    # the same, named for you
    bad, badkey = ca.wrong_host_cert()           # valid chain, another name
    other = TestCA(name='another CA')            # a CA nobody trusts
    ca.cert  (== ca.ca_file)                     # the CA's PEM: [smtp] ca_file
    ctx = ca.server_context(cert, key, sni_log)  # ssl.SSLContext for a server
    ca.cleanup()                                 # removes the temp dir it made

Keys are ECDSA P-256 (fast to make). Certificates are valid from now for
two days and carry what a real server certificate carries: subjectAltName
entries (DNS names, or IP addresses for literals), serverAuth,
digitalSignature, CA:FALSE. Used by the SMTP tests (smtpsink.py), the
IMAP tests and the HTTPS SMS tests (smsserver.py with a TLS context).
"""
import ipaddress
import os
import shutil
import ssl
import subprocess
import tempfile


def _run(*argv):
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=30)


class TestCA:
    def __init__(self, folder=None, name='eimzad test CA'):
        self._own = folder is None
        self.dir = tempfile.mkdtemp(prefix='eimza-ca-') if folder is None else folder
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o700)
        self.cert = os.path.join(self.dir, 'ca.crt')
        self.key = os.path.join(self.dir, 'ca.key')
        self.ca_file, self.ca_key = self.cert, self.key
        self._serial = 1
        _run('openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
             '-nodes', '-keyout', self.key, '-out', self.cert, '-days', '2',
             '-subj', '/CN=' + name, '-addext', 'basicConstraints=critical,CA:TRUE',
             '-addext', 'keyUsage=critical,keyCertSign,cRLSign')
        os.chmod(self.key, 0o600)

    def issue(self, name, hosts):
        """A certificate signed by this CA for the given DNS names / IP
        addresses, as name.crt / name.key. Returns (cert_path, key_path)."""
        hosts = list(hosts)
        key = os.path.join(self.dir, name + '.key')
        csr = os.path.join(self.dir, name + '.csr')
        crt = os.path.join(self.dir, name + '.crt')
        ext = os.path.join(self.dir, name + '.ext')
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
        self._serial += 1
        _run('openssl', 'req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
             '-nodes', '-keyout', key, '-out', csr, '-subj', '/CN=' + hosts[0])
        _run('openssl', 'x509', '-req', '-in', csr, '-CA', self.cert, '-CAkey', self.key,
             '-set_serial', str(1000 + self._serial), '-days', '2', '-extfile', ext,
             '-out', crt)
        os.chmod(key, 0o600)
        return crt, key

    def server_cert(self, hosts, name=None):
        """issue() with a generated name."""
        return self.issue(name or 'server%d' % self._serial, hosts)

    def wrong_host_cert(self):
        """A valid certificate from this CA for a name no test connects to."""
        return self.issue('wronghost', ['wrong-host.invalid'])

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
        """Remove the folder if this CA made it (a given folder is the
        caller's to remove)."""
        if self._own:
            shutil.rmtree(self.dir, ignore_errors=True)
