"""The RocksDB state store: bounded memory (``agents.app.STORE_OPTIONS``), customers counted
cheaply (``StateTable.customers``)."""

from types import SimpleNamespace

import rocksdict

from agents.app import create_app
from agents.settings import Settings
from agents.state_table import StateTable


def test_each_state_partition_database_has_bounded_memory(tmp_path):
    aml = create_app(Settings(store="rocksdb://", data_dir=tmp_path))

    options = aml.state.table.data.rocksdb_options
    memtables = options.write_buffer_size * options.max_write_buffer_number
    assert memtables + options.block_cache_size <= 64 * 1024 * 1024


def test_customers_in_the_store_are_estimated_without_reading_every_key(tmp_path):
    databases = {p: rocksdict.Rdict(str(tmp_path / f"p{p}")) for p in (0, 3)}
    try:
        for n in range(250):
            databases[n % 2 * 3][f"customer-{n}".encode()] = b"state"
        table = SimpleNamespace(data=SimpleNamespace(_dbs=databases))

        assert StateTable(table, send_records=None).customers() == 250
    finally:
        for database in databases.values():
            database.close()
