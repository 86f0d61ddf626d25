"""Data sets for mpigc: specs, the synthetic problem, npz/svmlight readers, chunk ranges,
label and finiteness checks.

Typical use on a worker::

    source = parse_data_spec(args.data, model=args.model)   # cheap, every rank
    bounds = chunk_bounds(source.n_rows, n_chunks)
    X, y = source.read_rows([(bounds[j], bounds[j + 1]) for j in my_chunks])
    y = prepare_labels(y, args.model)                       # labels fit the model

In a job, ``parse_data_spec(spec, comm=comm)`` opens the files on rank 0 only (an svmlight
file is indexed there, in one pass) and sends the source to every rank, so each worker
reads only the bytes of its own rows. The runtime checks the labels each rank read (no
extra pass over the files); ``source.validate(model)`` checks those of the whole data set
at once.
"""

from mpigc.data.checks import check_finite, check_memory, prepare_labels
from mpigc.data.chunks import chunk_bounds
from mpigc.data.npz import NpzSource, save_npz
from mpigc.data.source import DataSource
from mpigc.data.spec import ArraySource, ConcatSource, parse_data_spec
from mpigc.data.svmlight import SvmlightIndex, SvmlightSource, index_file
from mpigc.data.synthetic import BLOCK_ROWS, SyntheticSource

__all__ = ["parse_data_spec", "DataSource", "SyntheticSource", "NpzSource", "SvmlightSource",
           "SvmlightIndex", "index_file", "ArraySource", "ConcatSource", "save_npz",
           "chunk_bounds", "prepare_labels", "check_finite", "check_memory", "BLOCK_ROWS"]
