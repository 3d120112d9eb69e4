"""Downloads against a local HTTP server: good, corrupted, truncated, interrupted, offline."""
import hashlib
import http.server
import socket
import struct
import threading
from pathlib import Path

import pytest
from disbench.datasets.download import (
    OfficialFile,
    ensure_file,
    file_hash,
    import_file,
    pin_path,
    pinned_sha256,
    verify,
)
from disbench.errors import DisbenchError

PAYLOAD = bytes(range(256)) * 4096 + b"tail"  # ~1 MiB, more than one read chunk
SHA = hashlib.sha256(PAYLOAD).hexdigest()
MD5 = hashlib.md5(PAYLOAD).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        mode = self.path.strip("/").split("/")[0]
        self.server.hits.append(self.path)
        if mode == "missing":
            self.send_error(404, "Not Found")
            return
        body = PAYLOAD
        if mode == "corrupt":
            body = bytearray(PAYLOAD)
            body[1000] ^= 0xFF
            body = bytes(body)
        self.send_response(200)
        self.send_header("Content-Type", "text/html" if mode == "html" else
                         "application/octet-stream")
        if mode != "nolength":
            self.send_header("Content-Length", str(len(body)))
        else:
            self.send_header("Connection", "close")
        self.end_headers()
        if mode in ("truncated", "nolength"):
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if mode == "interrupted":
            self.wfile.write(body[: len(body) // 3])
            self.wfile.flush()
            # die mid-transfer: abort the TCP connection with a reset
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.hits = []
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield base, httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def dead_url():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: connection refused
    return f"http://127.0.0.1:{port}/data.bin"


def spec_for(url, **kw):
    return OfficialFile(name="data.bin", url=url, sha256=kw.pop("sha256", SHA),
                        size=kw.pop("size", len(PAYLOAD)), **kw)


def listing(folder: Path):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_good_download_verified_and_renamed(server, empty_cache, capsys):
    base, httpd = server
    folder = empty_cache / "toy"
    path = ensure_file(spec_for(f"{base}/good/data.bin"), folder, progress=True)
    assert path == folder / "data.bin"
    assert path.read_bytes() == PAYLOAD
    assert listing(folder) == ["data.bin", "data.bin.verified"]  # no temp file left
    err = capsys.readouterr().err
    assert "data.bin" in err  # the progress bar names the file
    assert len(httpd.hits) == 1


def test_md5_spec(server, empty_cache):
    base, _ = server
    spec = OfficialFile(name="data.bin", url=f"{base}/good/data.bin", md5=MD5)
    assert spec.algorithm == "md5"
    assert file_hash(ensure_file(spec, empty_cache, progress=False), "md5") == MD5


@pytest.mark.parametrize("mode", ["corrupt", "truncated", "interrupted", "nolength", "html",
                                  "missing"])
def test_failed_downloads_leave_nothing(server, empty_cache, mode):
    base, _ = server
    folder = empty_cache / "toy"
    url = f"{base}/{mode}/data.bin"
    # without a known size only the checksum can catch a short body sent without length
    size = None if mode == "nolength" else len(PAYLOAD)
    with pytest.raises(DisbenchError) as e:
        ensure_file(spec_for(url, size=size), folder, progress=False)
    msg = str(e.value)
    assert "data.bin" in msg and url in msg
    assert str(folder / "data.bin") in msg  # where to place a good copy
    assert listing(folder) == []  # neither the real name nor a temp file
    if mode in ("corrupt", "nolength"):
        # the checksum check caught it: expected and actual hashes are named
        body = bytearray(PAYLOAD)
        if mode == "corrupt":
            body[1000] ^= 0xFF
        else:
            body = body[: len(body) // 2]
        assert SHA in msg and hashlib.sha256(bytes(body)).hexdigest() in msg
    if mode == "truncated":
        assert "bytes" in msg
    if mode == "missing":
        assert "404" in msg
    if mode == "html":
        assert "web page" in msg


def test_offline_names_url_and_path(dead_url, empty_cache):
    folder = empty_cache / "toy"
    with pytest.raises(DisbenchError) as e:
        ensure_file(spec_for(dead_url), folder, progress=False, timeout=5)
    assert dead_url in str(e.value) and str(folder / "data.bin") in str(e.value)
    assert listing(folder) == []
    with pytest.raises(DisbenchError) as e:
        ensure_file(spec_for(dead_url), folder, download=False)
    assert dead_url in str(e.value) and str(folder / "data.bin") in str(e.value)
    assert "disbench datasets import" in str(e.value)


def test_mirror_used_when_primary_fails(server, empty_cache):
    base, httpd = server
    spec = spec_for(f"{base}/missing/data.bin", mirrors=(f"{base}/corrupt/data.bin",
                                                         f"{base}/good/data.bin"))
    path = ensure_file(spec, empty_cache, progress=False)
    assert path.read_bytes() == PAYLOAD
    assert [h.split("/")[1] for h in httpd.hits] == ["missing", "corrupt", "good"]
    assert listing(empty_cache) == ["data.bin", "data.bin.verified"]


def test_cache_hit_needs_no_network(server, dead_url, empty_cache):
    base, httpd = server
    ensure_file(spec_for(f"{base}/good/data.bin"), empty_cache, progress=False)
    # same file, URL now unreachable: served from the cache (marker, then by re-hashing)
    assert ensure_file(spec_for(dead_url), empty_cache).read_bytes() == PAYLOAD
    (empty_cache / "data.bin.verified").unlink()
    assert ensure_file(spec_for(dead_url), empty_cache, download=False).exists()
    assert (empty_cache / "data.bin.verified").exists()
    assert len(httpd.hits) == 1


def test_bad_file_in_cache_is_reported_not_downloaded(server, empty_cache):
    base, httpd = server
    (empty_cache).mkdir(parents=True)
    (empty_cache / "data.bin").write_bytes(PAYLOAD[:-1])
    with pytest.raises(DisbenchError) as e:
        ensure_file(spec_for(f"{base}/good/data.bin"), empty_cache)
    assert str(empty_cache / "data.bin") in str(e.value) and SHA in str(e.value)
    assert httpd.hits == []


def test_import_file_verifies(tmp_path, empty_cache):
    good = tmp_path / "good.bin"
    good.write_bytes(PAYLOAD)
    bad = tmp_path / "bad.bin"
    bad.write_bytes(PAYLOAD[::-1])
    spec = spec_for("http://example.invalid/data.bin")
    with pytest.raises(DisbenchError, match=str(bad)):
        import_file(bad, spec, empty_cache)
    assert listing(empty_cache) == []
    dest = import_file(good, spec, empty_cache)
    assert dest == empty_cache / "data.bin" and dest.read_bytes() == PAYLOAD
    verify(dest, spec)
    # importing the cached file onto itself is a no-op
    assert import_file(dest, spec, empty_cache) == dest


def test_unpublished_checksum_is_pinned_on_first_download(server, empty_cache, caplog):
    """Files without a published checksum (the Scream, MPI3D real): the first verified copy's
    SHA-256 is pinned beside it and logged; every later copy must match the pin."""
    base, httpd = server
    spec = OfficialFile(name="data.bin", url=f"{base}/good/data.bin")
    assert spec.expected is None
    path = ensure_file(spec, empty_cache, progress=False)
    pin = pin_path(empty_cache, spec)
    assert pin.read_text().strip() == SHA and pinned_sha256(spec, empty_cache) == SHA
    assert any(SHA in r.getMessage() and str(pin) in r.getMessage() for r in caplog.records)
    assert ensure_file(spec, empty_cache) == path and len(httpd.hits) == 1
    # a different copy in its place fails against the pin, naming it and how to re-pin
    path.write_bytes(PAYLOAD[::-1])
    with pytest.raises(DisbenchError, match=f"SHA-256 pinned in {pin} {SHA}.*delete {pin}"):
        ensure_file(spec, empty_cache)
    # a pinned file downloads only when the bytes match the pin (a corrupt server copy fails)
    path.unlink()
    with pytest.raises(DisbenchError, match="Nothing was kept"):
        ensure_file(OfficialFile(name="data.bin", url=f"{base}/corrupt/data.bin"), empty_cache,
                    progress=False)
    assert not path.exists()
    pin.write_text("not-a-sha\n")
    with pytest.raises(DisbenchError, match=f"{pin}: expected the 64-digit hex SHA-256"):
        ensure_file(spec, empty_cache)


class FileHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files`` (name -> bytes); anything else is a 404."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        body = self.server.files.get(self.path.strip("/"))
        if body is None:
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.mark.usefixtures("empty_cache")
def test_a_dataset_downloads_its_official_files_from_a_mirror(tmp_path, monkeypatch):
    """smallnorb's six files (tiny grid), the primary address dead, fetched from the mirror,
    verified, converted: the whole official path without the network."""
    import numpy as np
    from disbench import datasets as D
    from disbench.datasets import norb

    monkeypatch.setattr(norb, "GRID", {"category": 1, "elevation": 1, "azimuth": 2,
                                        "lighting": 1})
    norb.write_twin(tmp_path, progress=False)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FileHandler)
    httpd.files = {f"m/{p.name}": p.read_bytes() for p in tmp_path.iterdir()}
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        specs = tuple(OfficialFile(f.name, f"{base}/dead/{f.name}",
                                   sha256=hashlib.sha256(httpd.files[f"m/{f.name}"]).hexdigest(),
                                   mirrors=(f"{base}/m/{f.name}",)) for f in norb.FILES)
        monkeypatch.setattr(norb.SmallNORB, "files", specs)
        paths = norb.SmallNORB.prepare("official", progress=False)
        assert {p.name for p in paths[:6]} == {f.name for f in specs}
        ds = D.get("smallnorb", source="official")
        assert ds.images.shape == (10 * 2, 1, 64, 64)
        np.testing.assert_array_equal(ds.images, np.asarray(D.get("smallnorb",
                                                                  source="synthetic").images))
    finally:
        httpd.shutdown()
        httpd.server_close()
