//! Recovery of recordings killed mid-write, against ground truth (R2.1): every sample that reached
//! the file is recovered in its track with its bytes, none is placed wrongly, GStreamer reads the
//! recovered file, and the speech detector finds the same speech in it as in the finished file.

use recvault_recover::eval::{corpus, run};

#[test]
fn killed_recordings_are_recovered_sample_for_sample() {
    // A few cases of the corpus ACCURACY.md reports on: several video sizes and rates, AAC rates
    // and both encoders.
    for case in corpus(4, 11) {
        let dir = tempfile::tempdir().unwrap();
        let outcome = run(&case, dir.path()).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        eprintln!("{outcome:?}");
        assert_eq!(outcome.misplaced, 0, "{}: a sample placed wrongly", case.name);
        assert_eq!(outcome.recovered, outcome.expected, "{}: every whole sample recovered", case.name);
        assert!(outcome.expected.0 > 0 && outcome.expected.1 > 0, "{}: the case has media to recover", case.name);
        assert_eq!(
            (outcome.demuxed.0, outcome.demuxed.1),
            outcome.recovered,
            "{}: GStreamer reads them all",
            case.name
        );
        assert!(outcome.demuxed.2, "{}: the demuxer reaches the end without an error", case.name);
        // what is left is at most the unit the recorder was writing
        if let Some((bytes, why)) = &outcome.unplaced {
            assert!(*bytes < 512 * 1024, "{}: {bytes} bytes unplaced: {why}", case.name);
        }
        assert!(outcome.recovered_seconds <= outcome.fed_seconds + 0.1, "{}", case.name);
        assert!(outcome.speech_agreement >= 0.9, "{}: speech agreement {}", case.name, outcome.speech_agreement);
    }
}
