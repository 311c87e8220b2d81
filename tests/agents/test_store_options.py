"""The RocksDB state store is opened with bounded memory (``agents.app.STORE_OPTIONS``)."""

from agents.app import create_app
from agents.settings import Settings


def test_each_state_partition_database_has_bounded_memory(tmp_path):
    aml = create_app(Settings(store="rocksdb://", data_dir=tmp_path))

    options = aml.state.table.data.rocksdb_options
    memtables = options.write_buffer_size * options.max_write_buffer_number
    assert memtables + options.block_cache_size <= 64 * 1024 * 1024
