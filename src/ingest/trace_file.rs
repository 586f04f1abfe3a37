//! Reading one request trace from a file or folder for `tunelake simulate`: Parquet (a file, or a
//! folder such as a lake's `requests/`, read recursively) or CSV with the contract's column names
//! (`ts` as RFC 3339). Everything is conformed to the `requests` contract.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::contracts;
use crate::error::{Context, Error, Result};

/// The requests of a measured trace: an `import` format's file (`format`, e.g. `blis`) read without
/// writing anything, or requests-contract Parquet/CSV.
pub fn read_trace(path: &Path, format: Option<&str>) -> Result<Vec<RecordBatch>> {
    let Some(name) = format else {
        return read_requests(path);
    };
    let format =
        <super::import::Format as clap::ValueEnum>::from_str(name, true).map_err(|_| {
            Error::Setting {
                key: "format".into(),
                message: format!(
                    "`{name}` is not an import format (azure, mooncake, inferno, burstgpt, blis)"
                ),
            }
        })?;
    let imported = super::import::read(format, path, &Default::default())?;
    Ok(imported.requests.into_iter().collect())
}

/// Reads and conforms every request of `path`.
pub fn read_requests(path: &Path) -> Result<Vec<RecordBatch>> {
    let contract = contracts::requests();
    let mut batches = Vec::new();
    for file in files(path)? {
        let name = file.display().to_string();
        let opened = std::fs::File::open(&file).map_err(|source| Error::Io {
            path: file.clone(),
            source,
        })?;
        let is_csv = file.extension().is_some_and(|e| e == "csv");
        let raw: Vec<RecordBatch> = if is_csv {
            let schema = csv_schema(&file)?;
            arrow::csv::ReaderBuilder::new(schema)
                .with_header(true)
                .build(opened)
                .and_then(|reader| reader.collect::<std::result::Result<Vec<_>, _>>())
                .context(format!("reading CSV {name}"))?
        } else {
            ParquetRecordBatchReaderBuilder::try_new(opened)
                .and_then(|b| b.build())
                .map_err(|e| Error::BadFile {
                    file: name.clone(),
                    message: e.to_string(),
                })?
                .collect::<std::result::Result<Vec<_>, _>>()
                .context(format!("reading {name}"))?
        };
        for batch in raw {
            batches.push(contracts::conform(&contract, &name, &batch)?);
        }
    }
    Ok(batches)
}

/// The Parquet/CSV files of `path`, in path order.
fn files(path: &Path) -> Result<Vec<PathBuf>> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut found = Vec::new();
    for entry in std::fs::read_dir(path).map_err(io)? {
        let entry = entry.map_err(io)?.path();
        if entry.is_dir() {
            found.extend(files(&entry)?);
        } else if entry.extension().is_some_and(|e| e == "parquet") {
            found.push(entry);
        }
    }
    found.sort();
    Ok(found)
}

/// CSV columns typed as the contract types them; timestamps are parsed from RFC 3339 text.
fn csv_schema(file: &Path) -> Result<Arc<Schema>> {
    let header = std::fs::read_to_string(file)
        .map_err(|source| Error::Io {
            path: file.to_path_buf(),
            source,
        })?
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    let contract = contracts::requests();
    let fields = header
        .split(',')
        .map(|name| {
            let name = name.trim();
            let data_type = contract
                .schema
                .field_with_name(name)
                .map(|f| match f.data_type() {
                    DataType::List(_) => DataType::Utf8,
                    other => other.clone(),
                })
                .unwrap_or(DataType::Utf8);
            Field::new(name, data_type, true)
        })
        .collect::<Vec<_>>();
    Ok(Arc::new(Schema::new(fields)))
}
