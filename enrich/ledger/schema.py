"""Numbered ledger migrations. Never edit one that has landed: add the next one.

Times are Unix seconds (REAL, UTC); JSON columns hold text. Status columns list their
values; the transitions between them are in ``states.py``.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("enrich")


@migrations(name="m001_core")
def m001_core(db: Database) -> None:
    db.executescript(
        """
        -- Snapshot of each source product as last synced (edit context, the stored text).
        CREATE TABLE products (
            source_id TEXT PRIMARY KEY,         -- WooCommerce product (or variation) id
            parent_id TEXT,                     -- parent product id for variations
            type TEXT,                          -- simple|variable|variation|grouped|external
            sku TEXT,
            name TEXT,
            status TEXT,                        -- the store's post status: publish, draft, ...
            snapshot TEXT NOT NULL,             -- JSON: the fields enrich reads and may write
            content_hash TEXT NOT NULL,         -- sha256 of the canonical snapshot
            date_modified_gmt TEXT,             -- the store's, for the conflict check
            state TEXT NOT NULL DEFAULT 'complete',  -- complete|needs_work|needs_data|invalid
            missing TEXT,                       -- JSON list of fields that need copy
            reason TEXT,                        -- why needs_data / invalid
            synced_at REAL NOT NULL
        );

        CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,                 -- sync | run | publish | rollback | invoices
            started_at REAL NOT NULL,
            finished_at REAL,
            pid INTEGER,
            params TEXT,                        -- JSON, never secrets
            counts TEXT,                        -- JSON
            cost_usd REAL NOT NULL DEFAULT 0,
            exit_reason TEXT                    -- completed | limit | until | budget | breaker
                                                -- | fatal | signal | error (NULL while running)
        );

        CREATE TABLE jobs (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,                 -- product | invoice
            source_id TEXT NOT NULL,
            input_hash TEXT NOT NULL,
            payload TEXT,                       -- JSON: what the job needs (fields to write, ...)
            status TEXT NOT NULL DEFAULT 'pending',
                -- pending | processing | failed | dead | drafted | approved | rejected
                -- | published | conflict | rolled_back | needs_data | invalid | superseded
            priority INTEGER NOT NULL DEFAULT 0,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL DEFAULT 0,
            lease_owner TEXT,
            lease_expires_at REAL,
            last_error TEXT,
            run_id INTEGER REFERENCES runs(id),
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            UNIQUE (kind, source_id, input_hash)
        );
        CREATE INDEX jobs_source ON jobs (kind, source_id);
        CREATE INDEX jobs_status ON jobs (status, kind);
        CREATE INDEX jobs_due ON jobs (priority DESC, id)
            WHERE status IN ('pending', 'failed');
        CREATE INDEX jobs_leased ON jobs (lease_expires_at) WHERE status = 'processing';

        -- One row per try at a job, whatever its outcome.
        CREATE TABLE attempts (
            id INTEGER PRIMARY KEY,
            job_id INTEGER NOT NULL REFERENCES jobs(id),
            run_id INTEGER REFERENCES runs(id),
            started_at REAL NOT NULL,
            finished_at REAL NOT NULL,
            outcome TEXT NOT NULL,              -- ok | flagged | retry | rate_limited | failed
                                                -- | dead | lost (lease expired) | released
            error_class TEXT,
            error TEXT,
            http_status INTEGER,
            latency_ms REAL,
            tokens_in INTEGER NOT NULL DEFAULT 0,
            tokens_out INTEGER NOT NULL DEFAULT 0,
            tokens_cached INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL NOT NULL DEFAULT 0
        );
        CREATE INDEX attempts_job ON attempts (job_id);
        CREATE INDEX attempts_run ON attempts (run_id);

        -- The draft a job produced. The review decision is the job's status
        -- (drafted | approved | rejected); the note and any edit live here.
        CREATE TABLE drafts (
            id INTEGER PRIMARY KEY,
            job_id INTEGER NOT NULL UNIQUE REFERENCES jobs(id),
            kind TEXT NOT NULL,
            source_id TEXT NOT NULL,
            fields TEXT NOT NULL,               -- JSON: the generated fields
            edited_fields TEXT,                 -- JSON: a reviewer's edit, when there is one
            template_name TEXT,
            template_hash TEXT,
            provider TEXT,
            model TEXT,
            params TEXT,                        -- JSON: temperature, max tokens, mode ...
            flags TEXT NOT NULL DEFAULT '[]',   -- JSON list of {"guard", "detail"}
            flagged INTEGER NOT NULL DEFAULT 0,
            tokens_in INTEGER NOT NULL DEFAULT 0,
            tokens_out INTEGER NOT NULL DEFAULT 0,
            tokens_cached INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL NOT NULL DEFAULT 0,
            reviewer_note TEXT,
            reviewed_at REAL,
            created_at REAL NOT NULL
        );
        CREATE INDEX drafts_source ON drafts (kind, source_id);

        CREATE TABLE meta (
            key TEXT PRIMARY KEY,
            value TEXT
        );
        """
    )


@migrations(name="m002_publishes")
def m002_publishes(db: Database) -> None:
    db.executescript(
        """
        -- What publish wrote, what was there before, and how each item ended.
        CREATE TABLE publishes (
            id INTEGER PRIMARY KEY,
            run_id INTEGER REFERENCES runs(id),
            job_id INTEGER NOT NULL REFERENCES jobs(id),
            draft_id INTEGER REFERENCES drafts(id),
            source_id TEXT NOT NULL,
            batch_no INTEGER,
            written TEXT NOT NULL,              -- JSON: the fields sent
            previous TEXT NOT NULL,             -- JSON: the store's values before the write
            outcome TEXT NOT NULL,              -- planned | written | conflict | error
                                                -- | rolled_back
            error TEXT,
            store_date_modified_gmt TEXT,       -- the store's after the write
            created_at REAL NOT NULL,
            finished_at REAL
        );
        CREATE INDEX publishes_job ON publishes (job_id);
        CREATE INDEX publishes_run ON publishes (run_id);
        """
    )


@migrations(name="m003_product_input")
def m003_product_input(db: Database) -> None:
    db.executescript(
        """
        -- Problems of the product's own data, found by sync (enrich.guards.inputs): JSON list
        -- of {"flag", "field", "detail"}; flag: instruction | source_conflict | bad_value
        -- | markup | duplicate_sku. Copied onto the product's drafts as "input" flags.
        ALTER TABLE products ADD COLUMN input_flags TEXT NOT NULL DEFAULT '[]';
        """
    )


@migrations(name="m005_batches")
def m005_batches(db: Database) -> None:
    db.executescript(
        """
        -- Provider batches (batch mode). A row is written as an intent before the provider
        -- is asked, so a crash between its answer and our record is reconciled, not resent.
        CREATE TABLE batches (
            id INTEGER PRIMARY KEY,             -- the local id, sent in metadata / custom ids
            provider TEXT NOT NULL,
            model TEXT NOT NULL,
            provider_batch_id TEXT UNIQUE,      -- NULL while an intent
            state TEXT NOT NULL,                -- intent | submitted | ended | collected
                                                -- | abandoned (never accepted)
            provider_status TEXT,               -- the provider's own word (in_progress, ...)
            jobs INTEGER NOT NULL,
            bytes INTEGER NOT NULL DEFAULT 0,
            run_id INTEGER REFERENCES runs(id),
            created_at REAL NOT NULL,           -- the intent
            submitted_at REAL,                  -- the provider accepted it
            ended_at REAL,
            collected_at REAL,                  -- every result ingested
            drafted INTEGER NOT NULL DEFAULT 0,
            failed INTEGER NOT NULL DEFAULT 0,  -- errored items (failed or dead)
            requeued INTEGER NOT NULL DEFAULT 0,  -- expired / canceled items back to pending
            discarded INTEGER NOT NULL DEFAULT 0,  -- results for jobs that moved on
            cost_usd REAL NOT NULL DEFAULT 0,   -- at the batch price
            live_cost_usd REAL NOT NULL DEFAULT 0,  -- the same usage at the live price
            error TEXT
        );
        CREATE INDEX batches_state ON batches (state);

        -- One line of a batch: joined to its result on custom_id, never on order.
        CREATE TABLE batch_items (
            custom_id TEXT PRIMARY KEY,         -- <ledger tag>-e<batch>-j<job>-a<attempt>
            batch_id INTEGER NOT NULL REFERENCES batches(id),
            job_id INTEGER NOT NULL REFERENCES jobs(id),
            attempt INTEGER NOT NULL,
            template_name TEXT,
            template_hash TEXT,
            outcome TEXT,                       -- NULL until ingested: drafted | failed | dead
                                                -- | pending | discarded
            ingested_at REAL
        );
        CREATE INDEX batch_items_batch ON batch_items (batch_id, outcome);
        CREATE INDEX batch_items_job ON batch_items (job_id);
        """
    )


@migrations(name="m006_published_values")
def m006_published_values(db: Database) -> None:
    db.executescript(
        """
        -- What the store holds after each confirmed publish write, in the item's shape
        -- (read from the batch response, or from the read-back that settled the row): the
        -- baseline rollback compares with, since the store rewrites copy on the way in.
        ALTER TABLE publishes ADD COLUMN stored TEXT;

        -- Per product and draft field, the value enrich last published as the store keeps
        -- it. Sync counts a field whose current value is this one as complete, and the
        -- boilerplate count ignores it (enrich's own text on many products is not supplier
        -- boilerplate). A rollback deletes the product's rows.
        CREATE TABLE published_values (
            source_id TEXT NOT NULL,
            field TEXT NOT NULL,                -- draft field: description, seo_title, ...
            value TEXT NOT NULL,                -- JSON: the stored value
            fingerprint TEXT,                   -- of its visible text (NULL when too short)
            publish_id INTEGER REFERENCES publishes(id),
            created_at REAL NOT NULL,
            PRIMARY KEY (source_id, field)
        );
        """
    )


@migrations(name="m008_priority")
def m008_priority(db: Database) -> None:
    db.executescript(
        """
        -- What sync needs to rank a product's job (enrich.priority): kept beside the snapshot,
        -- not in it, so a sale or a stock change never changes the content hash (which would
        -- supersede the job and its draft).
        ALTER TABLE products ADD COLUMN stock_status TEXT;    -- instock|outofstock|onbackorder
        ALTER TABLE products ADD COLUMN total_sales INTEGER;  -- the store's count (a variation:
                                                              -- its parent's)

        -- A store owner's `enrich jobs prioritize`: the tier named here beats the [sync]
        -- priority rules for this product (and its variations) until it is cleared. Sync
        -- reads it for every job it queues, so it survives any re-sync.
        CREATE TABLE priority_overrides (
            source_id TEXT PRIMARY KEY,         -- product (or variation) id
            tier TEXT NOT NULL,                 -- a tier name: urgent | a [sync] tier | rest
            set_at REAL NOT NULL
        );
        """
    )


@migrations(name="m009_product_fingerprints")
def m009_product_fingerprints(db: Database) -> None:
    db.executescript(
        """
        -- The snapshot's fingerprints (its "fingerprints" object, which the content hash
        -- covers) in a column of their own: the boilerplate count and the products it may
        -- flip read them for the whole catalog after every sync, and parsing each whole
        -- snapshot for them took most of that time. Written with the snapshot.
        ALTER TABLE products ADD COLUMN fingerprints TEXT;
        UPDATE products SET fingerprints = json_extract(snapshot, '$.fingerprints');
        """
    )


@migrations(name="m010_drop_jobs_source")
def m010_drop_jobs_source(db: Database) -> None:
    db.executescript(
        """
        -- jobs_source (kind, source_id) repeated the first two columns of the UNIQUE
        -- (kind, source_id, input_hash) index, which serves every lookup it served; each
        -- queued job paid for a second index entry (about an eighth of an INSERT).
        DROP INDEX IF EXISTS jobs_source;
        """
    )


#: Names in order; a ledger that has applied a name not in this list is from a newer enrich.
KNOWN = [m.name for m in migrations._migrations]
