"""svmlight files: our parser against scikit-learn's load_svmlight_file, partial reads,
and every malformed-line message."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import dump_svmlight_file, load_svmlight_file

from mpigc.data import parse_data_spec
from mpigc.errors import UsageError


def reference(path, n_features=None, zero_based=False):
    X, y = load_svmlight_file(str(path), zero_based=zero_based, n_features=n_features)
    return X.toarray(), y


@pytest.mark.parametrize("suffix", [".svm", ".libsvm", ".txt"])
def test_matches_sklearn(tmp_path, suffix):
    rng = np.random.default_rng(0)
    X = sp.random(500, 60, density=0.1, random_state=2, format="csr")
    X.data = rng.standard_normal(X.nnz) * 1e3
    y = rng.standard_normal(500)
    path = tmp_path / f"d{suffix}"
    dump_svmlight_file(X, y, str(path), zero_based=False)
    src = parse_data_spec(str(path))
    Xr, yr = reference(path)
    assert (src.n_rows, src.is_sparse) == (500, True)
    assert src.n_features == Xr.shape[1]        # largest index in the file
    Xa, ya = src.read_rows([(0, 500)])
    assert sp.isspmatrix_csr(Xa) and Xa.dtype == np.float64
    np.testing.assert_array_equal(Xa.toarray(), Xr)
    np.testing.assert_array_equal(ya, yr)
    ranges = [(480, 500), (3, 4), (100, 250)]
    Xb, yb = src.read_rows(ranges)
    idx = np.concatenate([np.arange(a, b) for a, b in ranges])
    np.testing.assert_array_equal(Xb.toarray(), Xr[idx])
    np.testing.assert_array_equal(yb, yr[idx])
    np.testing.assert_array_equal(src.labels(), yr)


HANDWRITTEN = (
    "# a header comment: with 3:colons\n"
    "+1 1:0.5 3:-2e-3   # trailing 9:9 comment\n"
    "\n"
    "-1 2:1.25\r\n"
    "   \n"
    "1\n"
    "0 4:7 1:1\n"
    "  # indented comment\n"
    "-1 3:+4.5e2 4:.5"
)


def test_comments_blank_lines_and_unsorted_indices(tmp_path):
    path = tmp_path / "h.svm"
    path.write_text(HANDWRITTEN)
    src = parse_data_spec(str(path))
    assert (src.n_rows, src.n_features) == (5, 4)
    Xa, ya = src.read_rows([(0, 5)])
    expect = np.array([[0.5, 0, -2e-3, 0], [0, 1.25, 0, 0], [0, 0, 0, 0],
                       [1, 0, 0, 7], [0, 0, 450, 0.5]])
    np.testing.assert_array_equal(Xa.toarray(), expect)
    np.testing.assert_array_equal(ya, [1, -1, 1, 0, -1])


def test_options_features_and_zero_based(tmp_path):
    path = tmp_path / "z.svm"
    path.write_text("1 0:1 2:3\n-1 1:2\n")
    src = parse_data_spec(f"{path}:zero_based=1,features=10")
    assert (src.n_rows, src.n_features) == (2, 10)
    np.testing.assert_array_equal(src.read_rows([(0, 2)])[0].toarray(),
                                  reference(path, 10, True)[0])
    assert parse_data_spec(f"{path}:zero_based=1").n_features == 3
    with pytest.raises(UsageError, match=r"z.svm line 1: feature index 0 is out of range "
                                         r"\(indices are 1-based"):
        parse_data_spec(str(path)).read_rows([(0, 2)])
    with pytest.raises(UsageError, match="z.svm line 1: feature index 2 exceeds the 2 features"):
        parse_data_spec(f"{path}:zero_based=1,features=2").read_rows([(0, 1)])


def test_several_files_take_the_widest(tmp_path):
    (tmp_path / "a.svm").write_text("1 1:1\n")
    (tmp_path / "b.svm").write_text("-1 5:2\n1 2:1\n")
    src = parse_data_spec(f"{tmp_path}/a.svm+{tmp_path}/b.svm")
    assert (src.n_rows, src.n_features) == (3, 5)
    Xa, ya = src.read_rows([(0, 3)])
    np.testing.assert_array_equal(Xa.toarray(), [[1, 0, 0, 0, 0], [0, 0, 0, 0, 2],
                                                 [0, 1, 0, 0, 0]])
    # options apply to every file; a fixed count that a file exceeds fails on its rows
    src = parse_data_spec(f"{tmp_path}/a.svm+{tmp_path}/b.svm:features=3")
    with pytest.raises(UsageError, match="b.svm line 1: feature index 5 exceeds the 3 features"):
        src.read_rows([(0, 2)])


@pytest.mark.parametrize("line, message", [
    ("1 3:abc", r"line 2: value 'abc' of feature 3 is not a number"),
    ("1 x:1", r"line 2: feature index in 'x:1' is not a non-negative integer"),
    ("1 3", r"line 2: expected INDEX:VALUE, got '3'"),
    ("1 3:", r"line 2: expected INDEX:VALUE, got '3:'"),
    ("1 :3", r"line 2: expected INDEX:VALUE, got ':3'"),
    ("1 3:4:5", r"line 2: expected INDEX:VALUE, got '3:4:5'"),
    ("1 qid:4 3:1", r"line 2: qid is not supported"),
    ("abc 1:1", r"line 2: label 'abc' is not a number"),
    ("1:1 2:2", r"line 2: line starts with '1:1', expected a label"),
    ("1 2:nan", r"line 2: value of feature 2 is nan"),
    ("1 2:-inf", r"line 2: value of feature 2 is -inf"),
    ("inf 2:1", r"line 2: label is inf"),
    ("1 -2:1", r"line 2: feature index in '-2:1' is not a non-negative integer"),
    ("1 3: 4", r"line 2: expected INDEX:VALUE, got '3:'"),
    ("1 3 4:5:6", r"line 2: expected INDEX:VALUE, got '3'"),
    ("1 99999999999999999999:1", r"line 2: feature index 99999999999999999999 is too large"),
    ("1 0:1", r"line 2: feature index 0 is out of range \(indices are 1-based"),
    ("1 2:1 1:3 2:4", r"line 2: feature index 2 appears twice"),
    ("1 4:1", r"line 2: feature index 4 exceeds the 3 features of the data set"),
    ("1 1.5:1", r"line 2: feature index in '1.5:1' is not a non-negative integer"),
])
def test_malformed_lines(tmp_path, line, message):
    path = tmp_path / "bad.svm"
    path.write_text(f"1 1:1 2:2 3:3\n{line}\n-1 1:1\n")
    src = parse_data_spec(f"{path}:features=3")
    with pytest.raises(UsageError, match=f"bad.svm {message}"):
        src.read_rows([(0, 3)])
    # rows that do not include the bad line read fine: workers parse only their own lines
    assert src.read_rows([(0, 1), (2, 3)])[0].shape == (2, 3)


def test_bad_files(tmp_path):
    (tmp_path / "empty.svm").write_text("")
    (tmp_path / "comments.svm").write_text("# nothing\n\n")
    (tmp_path / "labels.svm").write_text("1\n0\n")
    (tmp_path / "nolabel.svm").write_text("1 2:1\nfoo 1:1\n")
    for spec, message in [
        (f"{tmp_path}/empty.svm", "empty.svm: the file is empty"),
        (f"{tmp_path}/comments.svm", "comments.svm: no data lines"),
        (f"{tmp_path}/labels.svm", "labels.svm: no feature index found; give features=D"),
        (f"{tmp_path}/labels.svm:features=0", "features=0 .* must be a positive integer"),
        (f"{tmp_path}/labels.svm:zero_based=2", "zero_based=2 .* must be 0 or 1"),
        (f"{tmp_path}/labels.svm:dims=2", "unknown option 'dims'"),
        (f"{tmp_path}/missing.svm", "data file not found"),
    ]:
        with pytest.raises(UsageError, match=message):
            parse_data_spec(spec)
    with pytest.raises(UsageError, match="nolabel.svm line 2: label 'foo' is not a number"):
        parse_data_spec(f"{tmp_path}/nolabel.svm").validate("linear")


def test_labels_that_do_not_fit_the_model(tmp_path):
    path = tmp_path / "multi.svm"
    path.write_text("1 1:1\n2 1:1\n3 2:1\n")
    src = parse_data_spec(str(path))
    src.validate("linear")
    with pytest.raises(UsageError, match=r"multi.svm: logistic regression needs labels in "
                                         r"\{0, 1\} or \{-1, 1\}; got 2, 3"):
        src.validate("logistic")


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([-1.0, 0.0, 1.0, 2.5]),
                          st.dictionaries(st.integers(1, 30),
                                          st.floats(-1e6, 1e6, allow_nan=False, width=32),
                                          max_size=6)),
                min_size=1, max_size=30),
       st.integers(0, 29), st.integers(1, 30))
def test_random_files_match_sklearn(tmp_path_factory, rows, a, length):
    path = tmp_path_factory.mktemp("h") / "r.svm"
    lines = [" ".join([repr(lab)] + [f"{k}:{v!r}" for k, v in sorted(feats.items())])
             for lab, feats in rows]
    path.write_text("\n".join(lines) + "\n")
    src = parse_data_spec(f"{path}:features=30")
    Xr, yr = reference(path, 30)
    a = min(a, len(rows) - 1)
    b = min(a + length, len(rows))
    Xa, ya = src.read_rows([(a, b)])
    np.testing.assert_array_equal(Xa.toarray(), Xr[a:b])
    np.testing.assert_array_equal(ya, yr[a:b])
    widest = max((max(feats) for _, feats in rows if feats), default=0)
    if widest:      # the byte scan finds the largest index
        assert parse_data_spec(str(path)).n_features == widest


# -- the compiled parser: numbers, partial reads, the index, compressed files ----------------
def _tokens(rng, k):
    """Values in the forms files hold, with the hard cases of decimal-to-binary rounding."""
    out = []
    for _ in range(k):
        kind = rng.integers(8)
        if kind == 0:
            out.append(repr(float(rng.standard_normal() * 10.0 ** rng.integers(-30, 30))))
        elif kind == 1:
            out.append(f"{rng.standard_normal():.16g}")
        elif kind == 2:
            out.append(f"{rng.integers(1, 10**18)}e{rng.integers(-340, 290)}")
        elif kind == 3:
            out.append(str(2 ** int(rng.integers(53, 64)) + int(rng.integers(-2, 3))))
        elif kind == 4:
            out.append(f"{rng.random():.25f}")          # 25 digits: converted by Python
        else:
            out.append(str(rng.choice(["0", "-0", "+0.0", ".5", "5.", "1E+05", "-1.5e-3",
                                       "00012", "1e-400", "4.9406564584124654e-324",
                                       "2.2250738585072014e-308", "1.7976931348623157e308",
                                       "9007199254740993", "0.000"])))
    return out


def test_values_are_python_floats(tmp_path):
    rng = np.random.default_rng(5)
    rows = [_tokens(rng, 6) for _ in range(800)]
    path = tmp_path / "v.svm"
    # unsorted indices too: values must move with them
    path.write_text("".join(f"1 {' '.join(f'{k}:{v}' for k, v in zip((4, 2, 6, 1, 3, 5), r))}\n"
                            for r in rows))
    X, _ = parse_data_spec(str(path)).read_rows([(0, 800)])
    expect = np.array([[float(r[k]) for k in (3, 1, 4, 0, 5, 2)] for r in rows])
    assert np.array_equal(X.indices.reshape(800, 6), np.tile(np.arange(6), (800, 1)))
    # bit for bit (-0.0 too), on the stored entries
    assert np.array_equal(X.data.reshape(800, 6).view(np.int64), expect.view(np.int64))


def test_reads_touch_only_their_rows(tmp_path):
    from mpigc.data.svmlight import STRIDE

    path = tmp_path / "p.svm"
    lines = [f"{i % 2} {i % 7 + 1}:{i}.5 9:1\n" for i in range(5000)]
    path.write_text("# header\n" + "".join(lines))
    src = parse_data_spec(str(path))
    assert (src.n_rows, src.n_features, src.bytes_read) == (5000, 9, 0)
    X, y = src.read_rows([(1000, 1200)])
    np.testing.assert_array_equal(y, np.arange(1000, 1200) % 2)
    width = max(len(ln) for ln in lines)
    assert src.bytes_read <= (200 + 2 * STRIDE) * width


def test_line_numbers_count_every_line_across_the_index(tmp_path):
    path = tmp_path / "n.svm"
    lines = []          # physical lines: data, and after every third a comment and a blank
    for i in range(300):
        lines.append(f"1 1:{i}")
        if i % 3 == 0:
            lines += ["# a comment", ""]
    rows = [k for k, ln in enumerate(lines) if ln.startswith("1")]
    lines[rows[280]] = "1 1:x"
    path.write_text("\n".join(lines) + "\n")
    src = parse_data_spec(str(path))
    with pytest.raises(UsageError, match=rf"n\.svm line {rows[280] + 1}: value 'x' of feature 1"):
        src.read_rows([(250, 300)])
    src.read_rows([(0, 280), (281, 300)])


def test_the_index_travels_and_the_file_must_not_change(tmp_path):
    import os
    import pickle

    from mpigc.data import SvmlightSource, index_file

    path = tmp_path / "t.svm"
    path.write_text("1 1:1 3:2\n0 2:5\n")
    index = pickle.loads(pickle.dumps(index_file(str(path))))
    src = pickle.loads(pickle.dumps(SvmlightSource(str(path), index=index)))
    assert (src.n_rows, src.n_features) == (2, 3)
    np.testing.assert_array_equal(src.read_rows([(1, 2)])[0].toarray(), [[0, 5, 0]])
    os.utime(path, ns=(0, 0))
    with pytest.raises(UsageError, match=r"t\.svm: the file changed after the job indexed it"):
        src.read_rows([(0, 1)])


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz"])
def test_compressed_files_only_where_allowed(tmp_path, suffix):
    from mpigc.data.svmlight import COMPRESSED

    plain = tmp_path / "c.svm"
    plain.write_text(HANDWRITTEN)
    packed = tmp_path / f"c.svm{suffix}"
    with COMPRESSED[suffix](packed, "wb") as f:
        f.write(HANDWRITTEN.encode())
    with pytest.raises(UsageError, match=rf"c\.svm\{suffix} is compressed: .*'mpigc convert "
                                         rf".*c\.svm\{suffix} .*/c\.npz'"):
        parse_data_spec(str(packed))
    src = parse_data_spec(str(packed), compressed=True)
    ref = parse_data_spec(str(plain))
    assert (src.n_rows, src.n_features) == (ref.n_rows, ref.n_features)
    np.testing.assert_array_equal(src.read_rows([(0, 5)])[0].toarray(),
                                  ref.read_rows([(0, 5)])[0].toarray())
    packed.write_bytes(packed.read_bytes()[:20])
    with pytest.raises(UsageError, match=rf"cannot read .*c\.svm\{suffix}"):
        parse_data_spec(str(packed), compressed=True)


def test_a_huge_index_is_refused_before_anything_is_allocated(tmp_path):
    from mpigc.data import check_memory

    path = tmp_path / "big.svm"
    path.write_text("1 1:1\n0 2:1 99999999999:1\n")
    src = parse_data_spec(str(path))
    assert src.n_features == 99999999999
    with pytest.raises(UsageError, match=r"big\.svm line 2: feature index 99999999999: a model "
                                         r"of 99999999999 features needs 5.09 TiB per rank "
                                         r"\(7 vectors of 745 GiB\), more than the 64 GiB"):
        check_memory(src, vectors=7, rows=1, available=64 << 30)
    check_memory(parse_data_spec(f"{path}:features=99999999999"), vectors=1, rows=1,
                 available=1 << 40)
    dense = parse_data_spec("synthetic:n=100000,d=100000")
    with pytest.raises(UsageError, match=r"the 50000 x 100000 rows of one rank and the model "
                                         r"need 37.3 GiB"):
        check_memory(dense, vectors=2, rows=50000, available=16 << 30)


@pytest.mark.parametrize("parts", [2, 3, 9, 40])
def test_an_index_split_into_byte_ranges_reads_the_same_rows(tmp_path, parts):
    from mpigc.data import SvmlightSource
    from mpigc.data.svmlight import STRIDE, index_file, index_range, merge_ranges

    rng = np.random.default_rng(parts)
    lines = []
    for k in range(700):
        if k % 37 == 5:
            lines.append("# a comment line")
        elif k % 53 == 7:
            lines.append("")
        else:
            cols = np.sort(rng.choice(np.arange(1, 300), rng.integers(0, 6), replace=False))
            lines.append(" ".join([str(k % 2)] + [f"{c}:{rng.random():.3f}" for c in cols]))
    path = tmp_path / "f.svm"
    path.write_text("\n".join(lines) + "\n")
    whole = index_file(path)
    split = merge_ranges(path, [index_range(path, k, parts) for k in range(parts)])
    assert (split.n_rows, split.max_index, split.max_index_line) == (
        whole.n_rows, whole.max_index, whole.max_index_line)
    assert split.rows[0] == 0 and split.rows[-1] == whole.n_rows
    assert np.diff(split.rows).max() <= STRIDE
    a = SvmlightSource(str(path), features=300, index=whole)
    b = SvmlightSource(str(path), features=300, index=split)
    for start, stop in [(0, whole.n_rows), (1, 2), (63, 200), (130, 131), (500, whole.n_rows)]:
        (Xa, ya), (Xb, yb) = a.read_rows([(start, stop)]), b.read_rows([(start, stop)])
        assert (Xa != Xb).nnz == 0 and np.array_equal(ya, yb)


@settings(max_examples=200, deadline=None)
@given(lines=st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b" ")), max_size=30),
       newline_at_end=st.booleans(), block=st.integers(1, 64), start=st.integers(0, 400),
       limit=st.one_of(st.none(), st.integers(0, 400)))
def test_the_index_pass_reads_the_lines_that_start_in_its_range(lines, newline_at_end, block,
                                                                start, limit):
    import io

    from mpigc.data.svmlight import _line_blocks

    text = b"\n".join(lines) + (b"\n" if newline_at_end and lines else b"")
    start = min(start, len(text))
    end = len(text) if limit is None else min(start + limit, len(text))
    if start < end < len(text) and text[end - 1:end] != b"\n":  # the line past the limit
        end = text.find(b"\n", end) + 1 or len(text)
    f = io.BufferedReader(io.BytesIO(text))
    f.seek(start)
    ours = [bytes(b) for b in _line_blocks(f, block=block, limit=limit)]
    assert b"".join(ours) == text[start:end]
    assert all(b.endswith(b"\n") for b in ours[:-1]) and all(ours)


def test_rows_read_in_pieces_match_python_floats_and_name_the_right_line(tmp_path):
    # three pieces of _ROWS_PER_PARSE rows and a part: unsorted rows, 20-digit values
    # (Python's float), comments and blank lines in all of them
    from mpigc.data import SvmlightSource
    from mpigc.data.svmlight import _ROWS_PER_PARSE

    rng = np.random.default_rng(7)
    n = 3 * _ROWS_PER_PARSE + 123
    lines, entries = [], []
    for r in range(n):
        cols = rng.choice(np.arange(1, 500), rng.integers(0, 8), replace=False)
        if r % 3:
            cols = np.sort(cols)
        vals = [f"{v:.3f}" if k % 5 else f"{v:.19f}1" for k, v in enumerate(rng.random(cols.size))]
        lines.append(" ".join([str(r % 2)] + [f"{c}:{v}" for c, v in zip(cols, vals)]))
        entries += [(r, c - 1, float(v)) for c, v in zip(cols, vals)]
        if r % 1000 == 7:
            lines.append("# a comment\n")
    path = tmp_path / "f.svm"
    path.write_text("\n".join(lines) + "\n")
    rows, cols, vals = map(np.array, zip(*entries))
    X_ref = sp.csr_matrix((vals, (rows, cols)), shape=(n, 499))
    y_ref = np.arange(n) % 2.0
    src = parse_data_spec(f"{path}:features=499")
    for start, stop in [(0, n), (5, _ROWS_PER_PARSE + 1), (_ROWS_PER_PARSE - 3, n - 2)]:
        X, y = src.read_rows([(start, stop)])
        assert abs(X - X_ref[start:stop]).max() == 0 and np.array_equal(y, y_ref[start:stop])
        assert X.has_sorted_indices and X.indices.dtype == np.int32
    bad = lines[:]
    bad[2 * _ROWS_PER_PARSE + 50] = "1 3:0.5 7:x"
    path.write_text("\n".join(bad) + "\n")
    at = bad.index("1 3:0.5 7:x")
    line = 1 + at + sum(k.count("\n") for k in bad[:at])  # the comments' extra blank lines
    with pytest.raises(UsageError, match=rf"f.svm line {line}: value 'x' of feature 7 is not"):
        SvmlightSource(str(path), features=499).read_rows([(0, n)])


@pytest.mark.parametrize("start, stop", [(0, 100), (65, 80), (70, 71)])
def test_a_repeated_index_is_found_in_any_range_that_holds_its_row(tmp_path, start, stop):
    # apart in the file, next to each other once the row is sorted; the range's entries
    # fill only part of the room the index gives it (its window starts at a kept row)
    path = tmp_path / "twice.svm"
    path.write_text("".join("1 3:1 1:2 3:4\n" if r == 70 else f"{r % 2} 3:{r} 1:1 2:2\n"
                            for r in range(100)))
    src = parse_data_spec(f"{path}:features=3")
    with pytest.raises(UsageError, match="twice.svm line 71: feature index 3 appears twice"):
        src.read_rows([(start, stop)])
    X, _ = src.read_rows([(0, 70)])
    assert X.has_sorted_indices and np.all(np.diff(X.indices.reshape(-1, 3)) > 0)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(0, 1),
                               st.lists(st.tuples(st.integers(1, 40), st.integers(-99, 99)),
                                        max_size=6),
                               st.sampled_from(["", " # note: 1:2", "\n", "\n# c\n"])),
                     min_size=1, max_size=300),
       cut=st.tuples(st.floats(0, 1), st.floats(0, 1)))
def test_any_range_reads_what_python_reads_from_its_lines(tmp_path_factory, rows, cut):
    # a reference parse in Python: the rows of any range, sorted within each row, or the
    # first repeated index of the range
    lines = []
    for label, entries, tail in rows:
        lines.append(" ".join([str(label)] + [f"{i}:{v / 8}" for i, v in entries]) + tail)
    path = tmp_path_factory.mktemp("r") / "r.svm"
    path.write_text("\n".join(lines) + "\n")
    src = parse_data_spec(f"{path}:features=40")
    n = len(rows)
    start = min(int(cut[0] * n), n - 1)
    stop = max(start + 1, min(n, start + int(cut[1] * n) + 1))
    twice = next((r for r in range(start, stop)
                  if len({i for i, _ in rows[r][1]}) < len(rows[r][1])), None)
    if twice is not None:
        with pytest.raises(UsageError, match="appears twice"):
            src.read_rows([(start, stop)])
        return
    X, y = src.read_rows([(start, stop)])
    assert np.array_equal(y, [rows[r][0] for r in range(start, stop)])
    assert X.has_sorted_indices
    for k, r in enumerate(range(start, stop)):
        want = sorted((i - 1, v / 8) for i, v in rows[r][1])
        got = list(zip(X[k].indices.tolist(), X[k].data.tolist()))
        assert got == want
