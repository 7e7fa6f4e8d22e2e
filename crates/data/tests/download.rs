//! The download path against HTTP servers on 127.0.0.1: no test touches the internet.

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::time::Duration;

use ae_data::{DataError, Downloader, IdxFile, IdxKind, MirrorError, Timeouts};
use ae_testkit::{Hostile, LocalMirror, dead_mirror, gzip, hostile_mirror};

/// A tiny labels file and its catalog entry.
fn labels_file() -> (IdxFile, Vec<u8>) {
    let mut content = vec![0, 0, 8, 1, 0, 0, 0, 3];
    content.extend([4, 2, 9]);
    let sha256: &'static str = Box::leak(ae_store::sha256_hex(&content).into_boxed_str());
    let file = IdxFile {
        name: "t10k-labels-idx1-ubyte",
        kind: IdxKind::Labels,
        len: content.len() as u64,
        sha256,
    };
    (file, content)
}

fn downloader(mirrors: Vec<String>) -> Downloader {
    Downloader::new(
        mirrors,
        Timeouts {
            connect: Duration::from_secs(5),
            read: Duration::from_secs(5),
            total: Duration::from_secs(5),
        },
    )
}

/// The files in `dir`, but the lock that downloads into it take turns on.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name != ".ae-download.lock")
        .collect();
    names.sort();
    names
}

#[test]
fn a_dead_and_a_corrupt_mirror_are_skipped_and_the_good_one_wins() {
    let (file, content) = labels_file();
    let good_gz = gzip(&content);
    let mut wrong_content = content.clone();
    wrong_content[9] = 7;
    let path = "t10k-labels-idx1-ubyte.gz".to_string();
    let corrupt = LocalMirror::serve(
        "/mnist/",
        HashMap::from([(path.clone(), gzip(&wrong_content))]),
    );
    let good = LocalMirror::serve("/mnist/", HashMap::from([(path, good_gz.clone())]));
    let dead = dead_mirror();

    let dir = tempfile::tempdir().expect("tempdir");
    let dest_dir = dir.path().join("mnist");
    let landed = downloader(vec![dead, corrupt.url.clone(), good.url.clone()])
        .fetch(&file, &dest_dir)
        .expect("the third mirror is good");

    assert_eq!(landed, dest_dir.join("t10k-labels-idx1-ubyte.gz"));
    assert_eq!(
        fs::read(&landed).expect("read"),
        good_gz,
        "the good mirror's bytes landed"
    );
    assert_eq!(
        names_in(&dest_dir),
        ["t10k-labels-idx1-ubyte.gz"],
        "no temporary or bad file left"
    );
}

#[test]
fn a_mirror_serving_raw_idx_is_accepted_and_stored_raw() {
    let (file, content) = labels_file();
    let mirror = LocalMirror::serve(
        "/mnist/",
        HashMap::from([("t10k-labels-idx1-ubyte.gz".to_string(), content.clone())]),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let landed = downloader(vec![mirror.url.clone()])
        .fetch(&file, dir.path())
        .expect("raw is fine");
    assert_eq!(landed, dir.path().join("t10k-labels-idx1-ubyte"));
    assert_eq!(fs::read(&landed).expect("read"), content);
}

#[test]
fn when_every_mirror_fails_each_is_reported_and_nothing_lands() {
    let (file, content) = labels_file();
    let gz = gzip(&content);
    let truncated = LocalMirror::serve(
        "/mnist/",
        HashMap::from([(
            "t10k-labels-idx1-ubyte.gz".to_string(),
            gz[..gz.len() - 6].to_vec(),
        )]),
    );
    let missing = LocalMirror::serve("/mnist/", HashMap::new());
    let dead = dead_mirror();

    let dir = tempfile::tempdir().expect("tempdir");
    let dest_dir = dir.path().join("mnist");
    let err = downloader(vec![
        dead.clone(),
        truncated.url.clone(),
        missing.url.clone(),
    ])
    .fetch(&file, &dest_dir)
    .expect_err("no mirror is good");

    let DataError::Download { attempts, .. } = &err else {
        panic!("expected a download error, got {err}");
    };
    assert_eq!(attempts.len(), 3);
    assert!(
        matches!(attempts[0].reason, MirrorError::Http(_)),
        "{}",
        attempts[0]
    );
    assert!(
        matches!(attempts[1].reason, MirrorError::Gzip(_)),
        "{}",
        attempts[1]
    );
    assert!(
        matches!(attempts[2].reason, MirrorError::Http(_)),
        "{}",
        attempts[2]
    );
    let message = err.to_string();
    for url in [&dead, &truncated.url, &missing.url] {
        assert!(message.contains(url.as_str()), "names {url}: {message}");
    }
    assert!(message.contains("404"), "{message}");
    // Each cause once: the truncated body's gzip error, the refused connection.
    assert!(
        message.contains(&format!(
            "{}t10k-labels-idx1-ubyte.gz: it served a corrupt gzip file: ",
            truncated.url
        )),
        "{message}"
    );
    let refused = message.matches("Connection refused").count();
    assert_eq!(refused, 1, "the dead mirror's cause once: {message}");
    assert!(
        message.contains(&format!("put it in {}", dest_dir.display())),
        "says where to put the file by hand: {message}"
    );
    assert_eq!(
        names_in(&dest_dir),
        Vec::<String>::new(),
        "the bad bytes never land"
    );
}

#[test]
fn an_unusable_data_folder_is_reported_before_any_download() {
    let (file, _) = labels_file();
    let dir = tempfile::tempdir().expect("tempdir");
    let blocker = dir.path().join("not-a-folder");
    fs::write(&blocker, b"").expect("write");
    let err = downloader(vec![dead_mirror()])
        .fetch(&file, &blocker.join("mnist"))
        .expect_err("cannot create a folder inside a file");
    assert!(matches!(err, DataError::DataDir { .. }), "{err}");
    assert!(err.to_string().contains("not-a-folder/mnist"), "{err}");
}

/// Regression: a mirror that streamed forever, or claimed an absurd size,
/// filled a disk; one that dripped a byte every half second never tripped
/// the read timeout and never gave way to the next mirror.
#[test]
fn hostile_mirrors_are_cut_off_and_the_next_one_is_tried() {
    let (file, content) = labels_file();
    let good = LocalMirror::serve(
        "/mnist/",
        HashMap::from([("t10k-labels-idx1-ubyte.gz".to_string(), gzip(&content))]),
    );
    let mirrors = vec![
        hostile_mirror(Hostile::Endless),
        hostile_mirror(Hostile::ClaimsHuge),
        hostile_mirror(Hostile::Drip),
        good.url.clone(),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = std::time::Instant::now();
    let downloader = Downloader::new(
        mirrors.clone(),
        Timeouts {
            connect: Duration::from_secs(5),
            read: Duration::from_secs(2),
            total: Duration::from_secs(3),
        },
    );
    let landed = downloader
        .fetch(&file, dir.path())
        .expect("the fourth mirror is good");
    assert_eq!(fs::read(&landed).expect("read"), gzip(&content));
    assert!(
        clock.elapsed() < Duration::from_secs(20),
        "took {:?}",
        clock.elapsed()
    );
    assert_eq!(names_in(dir.path()), ["t10k-labels-idx1-ubyte.gz"]);

    // Each failure says why.
    let err = Downloader::new(
        mirrors[..3].to_vec(),
        Timeouts {
            connect: Duration::from_secs(5),
            read: Duration::from_secs(2),
            total: Duration::from_secs(3),
        },
    )
    .fetch(&file, dir.path().join("none").as_path())
    .expect_err("no good mirror");
    let DataError::Download { attempts, .. } = &err else {
        panic!("expected a download error, got {err}");
    };
    assert!(
        matches!(attempts[0].reason, MirrorError::TooLarge { .. }),
        "{}",
        attempts[0]
    );
    assert!(
        matches!(
            attempts[1].reason,
            MirrorError::TooLarge {
                bytes: 1_000_000_000_000_000,
                ..
            }
        ),
        "{}",
        attempts[1]
    );
    assert!(
        attempts[2].to_string().contains("timeout")
            || attempts[2].to_string().contains("timed out"),
        "{}",
        attempts[2]
    );
    assert_eq!(names_in(&dir.path().join("none")), Vec::<String>::new());
}

/// What interrupted downloads left in the folder is removed before the next.
#[test]
fn leftovers_of_interrupted_downloads_are_removed() {
    let (file, content) = labels_file();
    let mirror = LocalMirror::serve(
        "/mnist/",
        HashMap::from([("t10k-labels-idx1-ubyte.gz".to_string(), gzip(&content))]),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join(".ae-tmp-12345-half"), vec![0u8; 10_000]).expect("write");
    fs::write(dir.path().join(".ae-tmp-older"), b"x").expect("write");
    downloader(vec![mirror.url.clone()])
        .fetch(&file, dir.path())
        .expect("downloaded");
    assert_eq!(names_in(dir.path()), ["t10k-labels-idx1-ubyte.gz"]);
}
