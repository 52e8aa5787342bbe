"""Test helpers: small generated MNIST-style IDX datasets and a local HTTP server for them.

``FileServer`` serves in-memory files from 127.0.0.1 on a free port in a background
thread, so download code can be tested without a network.
"""
import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from pckernels.data import IDX_FILES, write_idx


def make_idx_dataset(directory, n_train=20, n_test=10, shape=(28, 28), n_classes=10,
                     seed=0, compress=True):
    """Write the four IDX files of a random MNIST-style dataset into ``directory``.

    Returns
    -------
    dict
        ``{"train-images-idx3-ubyte": uint8 array of shape (n_train, *shape), ...}``,
        one entry per file stem.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, *shape), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.arange(n_train, dtype=np.uint8) % n_classes,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, *shape), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": np.arange(n_test, dtype=np.uint8) % n_classes,
    }
    suffix = ".gz" if compress else ""
    for stem in IDX_FILES:
        write_idx(directory / f"{stem}{suffix}", arrays[stem], compress=compress)
    return arrays


def md5_of(path):
    """Hex MD5 of a file's bytes."""
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        server = self.server
        server.requests.append(self.path)
        body = server.files.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        # A truncated path announces the full length but closes the connection early.
        cut = server.truncate.get(self.path)
        self.wfile.write(body if cut is None else body[:cut])

    def log_message(self, format, *args):
        pass


class FileServer:
    """Serve ``{url_path: bytes}`` over HTTP on 127.0.0.1 (a context manager).

    Attributes
    ----------
    url : str
        ``http://127.0.0.1:<port>`` without a trailing slash.
    files : dict
        URL path (``"/a/b.gz"``) to body; may be changed while serving.
    truncate : dict
        URL path to the number of bytes actually sent (with the full Content-Length).
    requests : list of str
        The paths requested, in order.
    """

    def __init__(self, files=None):
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.files = dict(files or {})
        self._httpd.truncate = {}
        self._httpd.requests = []
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self):
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def files(self):
        return self._httpd.files

    @property
    def truncate(self):
        return self._httpd.truncate

    @property
    def requests(self):
        return self._httpd.requests

    def serve_directory(self, directory, prefix):
        """Serve every file of ``directory`` under the URL path ``/<prefix>/``."""
        for path in Path(directory).iterdir():
            self.files[f"/{prefix}/{path.name}"] = path.read_bytes()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()
        return False
