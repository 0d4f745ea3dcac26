//! Encoding a pipeline's output in the negotiated response format.

use crate::codec::{self, ResponseFormat};
use crate::error::ToolkitError;
use crate::model::Matrix;
use crate::pipeline::PipelineOutput;

/// Encodes the output in the negotiated format.
pub fn encode(output: &PipelineOutput, format: ResponseFormat) -> Result<Vec<u8>, ToolkitError> {
    match (output, format) {
        (PipelineOutput::Embeddings { batched, items }, ResponseFormat::Json) => {
            Ok(write_embeddings_json(*batched, items))
        }
        (_, ResponseFormat::Json) => crate::json::to_vec(&output.to_value())
            .map_err(|e| ToolkitError::Internal(format!("JSON encoding failed: {e}"))),
        (_, ResponseFormat::Csv) => codec::encode_csv(&output.to_value()),
        (_, ResponseFormat::Npy) => codec::encode_npy(&output.to_value()),
        (_, ResponseFormat::EventStream) => Err(ToolkitError::UnsupportedAccept {
            accept: "text/event-stream".into(),
            reason: " for this response (only a generation streams tokens)".into(),
            supported: "application/json".into(),
        }),
        (_, ResponseFormat::JsonLines) => {
            // one line per element of a list result (one per input), else one line
            let value = output.to_value();
            let items = match value {
                serde_json::Value::Array(items) => items,
                other => vec![other],
            };
            let mut out = Vec::new();
            for item in &items {
                out.extend(
                    crate::json::to_vec(item).map_err(|e| {
                        ToolkitError::Internal(format!("JSON encoding failed: {e}"))
                    })?,
                );
                out.push(b'\n');
            }
            Ok(out)
        }
    }
}

/// The output of a batched request, one encoded JSON answer per input (what a JSON array
/// response would hold).
pub fn encode_items(output: &PipelineOutput) -> Result<Vec<Vec<u8>>, ToolkitError> {
    match output {
        PipelineOutput::Embeddings { items, .. } => Ok(items
            .iter()
            .map(|m| write_embeddings_json(false, std::slice::from_ref(m)))
            .collect()),
        PipelineOutput::Json(serde_json::Value::Array(items)) => items
            .iter()
            .map(|v| {
                crate::json::to_vec(v)
                    .map_err(|e| ToolkitError::Internal(format!("JSON encoding failed: {e}")))
            })
            .collect(),
        PipelineOutput::Json(_) => Err(ToolkitError::Internal(
            "a batched request did not answer with a list".into(),
        )),
    }
}

/// Answers of at least this many floats are written by several threads. A float takes ~22 ns
/// (`cargo bench --bench json`), so the batch of 32's ~200k floats are ~4.5 ms on one thread;
/// a sentence's ~5k floats (~0.1 ms) are not worth starting a thread.
const PARALLEL_FLOATS: usize = 16 * 1024;

/// Writes token embeddings straight into the output buffer (the batch-32 reply of a 384-wide
/// model is megabytes of floats: no intermediate JSON tree), on several threads when the
/// answer is large.
fn write_embeddings_json(batched: bool, items: &[Matrix]) -> Vec<u8> {
    let floats: usize = items.iter().map(|m| m.data.len()).sum();
    let threads = if floats >= PARALLEL_FLOATS {
        std::thread::available_parallelism().map_or(1, usize::from)
    } else {
        1
    };
    let write_row = |out: &mut Vec<u8>, row: &[f32]| {
        out.push(b'[');
        for (i, &x) in row.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            crate::json::write_py_float(out, f64::from(x));
        }
        out.push(b']');
    };
    let write_matrix = |out: &mut Vec<u8>, m: &Matrix, threads: usize| {
        out.extend_from_slice(b"[[");
        write_joined(
            out,
            m.rows,
            |_| m.cols,
            |o, r| write_row(o, m.row(r)),
            threads,
        );
        out.extend_from_slice(b"]]");
    };
    let mut out = Vec::with_capacity(floats * 21 + 16);
    match items {
        [] if !batched => out.extend_from_slice(b"[]"),
        [m, ..] if !batched => write_matrix(&mut out, m, threads),
        // a list: the threads share out the sequences
        _ => {
            out.push(b'[');
            write_joined(
                &mut out,
                items.len(),
                |i| items[i].data.len(),
                |o, i| write_matrix(o, &items[i], 1),
                threads,
            );
            out.push(b']');
        }
    }
    out
}

/// Writes units `0..n` separated by commas into `out`: in order, by `threads` threads each
/// writing a contiguous run of units of about equal `weight` (floats) into a buffer of its own.
fn write_joined(
    out: &mut Vec<u8>,
    n: usize,
    weight: impl Fn(usize) -> usize + Sync,
    write: impl Fn(&mut Vec<u8>, usize) + Sync,
    threads: usize,
) {
    let write_run = |out: &mut Vec<u8>, units: std::ops::Range<usize>| {
        let first = units.start;
        for u in units {
            if u > first {
                out.push(b',');
            }
            write(out, u);
        }
    };
    if threads < 2 || n < 2 {
        write_run(out, 0..n);
        return;
    }
    // cut where the running weight passes each thread's share (every run holds a unit at least)
    let total: usize = (0..n).map(&weight).sum();
    let mut cuts = vec![0];
    let mut acc = 0;
    for u in 0..n - 1 {
        acc += weight(u);
        if cuts.len() < threads && acc * threads >= total * cuts.len() {
            cuts.push(u + 1);
        }
    }
    cuts.push(n);
    let capacity = |a: usize, b: usize| (a..b).map(&weight).sum::<usize>() * 21 + b - a;
    let rest: Vec<Vec<u8>> = std::thread::scope(|scope| {
        let others: Vec<_> = cuts[1..]
            .windows(2)
            .map(|w| {
                let (a, b) = (w[0], w[1]);
                scope.spawn(move || {
                    let mut own = Vec::with_capacity(capacity(a, b));
                    write_run(&mut own, a..b);
                    own
                })
            })
            .collect();
        // the first run on this thread, while the others write theirs
        write_run(out, 0..cuts[1]);
        others
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    for run in rest {
        out.push(b',');
        out.extend_from_slice(&run);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(rows: usize, cols: usize, seed: u32) -> Matrix {
        let data = (0..rows * cols)
            .map(|i| {
                let r = (i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed);
                (r % 20_000) as f32 / 7_000.0 - 1.4
            })
            .collect();
        Matrix { rows, cols, data }
    }

    /// The same answer through serde_json values (an independent layout of the nesting).
    fn via_values(batched: bool, items: &[Matrix]) -> Vec<u8> {
        let nested = |m: &Matrix| {
            serde_json::json!([(0..m.rows)
                .map(|r| m.row(r).iter().map(|&x| f64::from(x)).collect::<Vec<_>>())
                .collect::<Vec<_>>()])
        };
        let value = if batched {
            serde_json::Value::Array(items.iter().map(nested).collect())
        } else {
            items.first().map_or(serde_json::json!([]), nested)
        };
        crate::json::to_vec(&value).unwrap()
    }

    #[test]
    fn large_answers_written_by_several_threads_equal_the_plain_layout() {
        // a batch over the parallel threshold, of uneven lengths, and one long sequence
        let batch: Vec<Matrix> = (0..32)
            .map(|i| matrix(3 + (i * 7) % 40, 384, i as u32))
            .collect();
        assert!(batch.iter().map(|m| m.data.len()).sum::<usize>() >= PARALLEL_FLOATS);
        assert_eq!(
            write_embeddings_json(true, &batch),
            via_values(true, &batch)
        );
        let long = [matrix(300, 384, 9)];
        assert!(long[0].data.len() >= PARALLEL_FLOATS);
        assert_eq!(
            write_embeddings_json(false, &long),
            via_values(false, &long)
        );
        // and below the threshold
        let short = [matrix(12, 384, 5)];
        assert_eq!(
            write_embeddings_json(false, &short),
            via_values(false, &short)
        );
        assert_eq!(
            write_embeddings_json(true, &short),
            via_values(true, &short)
        );
        assert_eq!(write_embeddings_json(true, &[]), b"[]");
    }

    #[test]
    fn joined_runs_keep_every_unit_once_in_order_for_any_thread_count() {
        let weights = [5usize, 1, 1, 9, 2, 2, 2, 30, 1];
        for n in 0..=weights.len() {
            let want: Vec<String> = (0..n).map(|u| u.to_string()).collect();
            for threads in 1..=12 {
                let mut out = b"<".to_vec();
                write_joined(
                    &mut out,
                    n,
                    |u| weights[u],
                    |o, u| o.extend_from_slice(u.to_string().as_bytes()),
                    threads,
                );
                assert_eq!(
                    String::from_utf8(out).unwrap(),
                    format!("<{}", want.join(",")),
                    "{n} units on {threads} threads"
                );
            }
        }
    }
}
