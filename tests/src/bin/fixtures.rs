//! Prints the fixture table (`golden model task`, one line each) for scripts such as
//! `infra/replay-goldens.sh`, so that the table has one home: `FIXTURES` in `tests/src/lib.rs`.

fn main() {
    for f in hf_inference_tests::FIXTURES {
        println!("{} {} {}", f.golden, f.model, f.task);
    }
}
