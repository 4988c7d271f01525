//! How the CLI prints records, shared by `consume` and `group consume`.
//! It must not read or write anything but stdout.

use skiff::api::RecordOut;

/// One record a line: with `json` the record as JSON with its partition,
/// else its value (`base64:…` for a value that is not UTF-8).
pub(super) fn print_record(partition: u32, rec: &RecordOut, json: bool) -> anyhow::Result<()> {
    if json {
        let mut v = serde_json::to_value(rec)?;
        v["partition"] = partition.into();
        println!("{v}");
    } else {
        let value = rec
            .value
            .clone()
            .or(rec.value_base64.clone().map(|b| format!("base64:{b}")))
            .unwrap_or_default();
        println!("{value}");
    }
    Ok(())
}
