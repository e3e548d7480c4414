"""A throwaway certificate authority for TLS tests (openssl CLI).

    ca = TestCA(tmpdir)                      # makes ca.crt / ca.key
    cert, key = ca.issue('imap', ['localhost', '127.0.0.1'])
    bad, badkey = ca.issue('wrong', ['not-this-host.example'])
    other = TestCA(tmpdir2)                  # a CA nobody trusts

Keys are EC P-256 (fast to make). Everything lives under the given folder,
which the caller removes.
"""
import ipaddress
import os
import subprocess


def _run(*argv):
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class TestCA:
    def __init__(self, folder, name='eimzad test CA'):
        self.dir = folder
        os.makedirs(folder, exist_ok=True)
        self.cert = os.path.join(folder, 'ca.crt')
        self.key = os.path.join(folder, 'ca.key')
        _run('openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
             '-nodes', '-keyout', self.key, '-out', self.cert, '-days', '2',
             '-subj', '/CN=' + name, '-addext', 'basicConstraints=critical,CA:TRUE',
             '-addext', 'keyUsage=critical,keyCertSign,cRLSign')

    def issue(self, name, hosts):
        """A server certificate for the given DNS names / IP addresses."""
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
            f.write('subjectAltName=%s\nextendedKeyUsage=serverAuth\n'
                    'basicConstraints=CA:FALSE\n' % ','.join(sans))
        _run('openssl', 'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
             '-keyout', key, '-out', csr, '-subj', '/CN=' + hosts[0])
        _run('openssl', 'x509', '-req', '-in', csr, '-CA', self.cert, '-CAkey', self.key,
             '-CAcreateserial', '-out', crt, '-days', '2', '-extfile', ext)
        os.chmod(key, 0o600)
        return crt, key
