//! Signals (docs/contract.md §2, "Signals"): a joined member's momentary
//! notice to the others — delivered to every other live member, never to
//! the sender, never stored, never replayed; checked, and rate-limited in a
//! bucket of its own.

mod common;

use std::{collections::HashMap, time::Duration};

use common::*;
use parlor_engine::{
    ChatEngine, Data, EngineConfig, EntryKind, EntryStream, ErrorKind, Live, NoticeKind, Principal,
    RateLimit, SeqRange,
};
use rand::Rng;

fn who(name: &str) -> Principal {
    Principal::new(user(name))
}

fn data(bytes: usize) -> Data {
    let mut data = Data::new();
    data.insert("pad".into(), "x".repeat(bytes).into());
    data
}

/// What `stream` hands out within `quiet` of the last item.
async fn drain(stream: &mut EntryStream, quiet: Duration) -> Vec<Live> {
    let mut got = Vec::new();
    while let Ok(next) = tokio::time::timeout(quiet, stream.next_live()).await {
        got.push(next.unwrap());
    }
    got
}

#[tokio::test]
async fn a_signal_reaches_the_others_now_and_never_the_log() {
    let (engine, _) = engine().await;
    let id = stored_room(&engine, "r", 10).await;
    let (_, mut ann, _ann_seat) = join(&engine, &user("ann"), &id).await.into_parts();
    let (_, mut bob, _bob_seat) = join(&engine, &user("bob"), &id).await.into_parts();
    let (_, mut cat, _cat_seat) = join(&engine, &user("cat"), &id).await.into_parts();
    let quiet = Duration::from_millis(100);
    for stream in [&mut ann, &mut bob, &mut cat] {
        drain(stream, quiet).await; // the joins
    }
    let head = engine
        .room(&who("ann"), &id)
        .await
        .unwrap()
        .unwrap()
        .last_seq;

    let sent = data(20);
    engine
        .signal(&who("ann"), &id, "typing", Some(sent.clone()))
        .await
        .unwrap();
    for (name, stream) in [("bob", &mut bob), ("cat", &mut cat)] {
        let got = drain(stream, quiet).await;
        assert_eq!(got.len(), 1, "{name}: one notice");
        let Live::Notice(notice) = &got[0] else {
            panic!("{name}: not a notice");
        };
        assert_eq!(notice.sender, user("ann"));
        assert_eq!(
            notice.kind,
            NoticeKind::Signal {
                name: "typing".into(),
                data: Some(sent.clone()),
            }
        );
    }
    assert!(drain(&mut ann, quiet).await.is_empty(), "not to the sender");

    // No seq, nothing stored, nothing replayed to a later join.
    let info = engine.room(&who("ann"), &id).await.unwrap().unwrap();
    assert_eq!(info.last_seq, head, "no seq taken");
    let log = engine
        .history(&who("ann"), &id, SeqRange::after(0, 100))
        .await
        .unwrap();
    assert!(log.entries.iter().all(|e| e.seq <= head));
    let dan = who("dan");
    let t = engine.reserve(&dan, &id, None).await.unwrap();
    let (_, mut replay, _dan_seat) = engine
        .commit(&dan, &t.ticket, Some(0))
        .await
        .unwrap()
        .into_parts();
    let replayed = drain(&mut replay, quiet).await;
    assert!(
        replayed.iter().all(|l| matches!(l, Live::Entry(_))),
        "a resume replays entries only"
    );
    assert!(replayed.len() as u64 >= head);
}

#[tokio::test]
async fn a_signal_is_checked_before_it_goes() {
    let (engine, _) = engine().await;
    let id = stored_room(&engine, "r", 10).await;
    let _ann = join(&engine, &user("ann"), &id).await;
    let cases = [
        (who("ann"), "read", None, ErrorKind::InvalidInput),
        (who("ann"), "Typing", None, ErrorKind::InvalidInput),
        (who("ann"), "x-", None, ErrorKind::InvalidInput),
        (who("ann"), "x-Nope", None, ErrorKind::InvalidInput),
        (
            who("ann"),
            "typing",
            Some(data(256)),
            ErrorKind::MessageTooLarge,
        ),
        (who("eve"), "typing", None, ErrorKind::NotAMember),
        (
            Principal::service(user("ops")),
            "typing",
            None,
            ErrorKind::Forbidden,
        ),
    ];
    for (caller, name, data, code) in cases {
        let err = engine.signal(&caller, &id, name, data).await.unwrap_err();
        assert_eq!(err.kind(), code, "{} {name}", caller.user);
    }
    let err = engine
        .signal(&who("ann"), &room("nowhere"), "typing", None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotAMember);
    // The largest data that fits, and the app's own names, go.
    let fits = data(256 - r#"{"pad":""}"#.len());
    for name in ["stopped_typing", "x-reaction", "x-a.b_c-1"] {
        engine
            .signal(&who("ann"), &id, name, Some(fits.clone()))
            .await
            .unwrap();
    }
    // A configured set replaces the default one.
    let (engine, _) = engine_with(EngineConfig::default().signal_names(["recording"])).await;
    let id = stored_room(&engine, "r", 10).await;
    let _ann = join(&engine, &user("ann"), &id).await;
    engine
        .signal(&who("ann"), &id, "recording", None)
        .await
        .unwrap();
    let err = engine
        .signal(&who("ann"), &id, "typing", None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn signals_have_a_rate_bucket_of_their_own() {
    let config = EngineConfig::default()
        .signal_rate(RateLimit::new(5.0, 10.0))
        .send_rate(RateLimit::new(1.0, 1.0));
    let (engine, _) = engine_with(config.clone()).await;
    let id = stored_room(&engine, "r", 10).await;
    let _ann = join(&engine, &user("ann"), &id).await;
    for _ in 0..10 {
        engine
            .signal(&who("ann"), &id, "typing", None)
            .await
            .unwrap();
    }
    let err = engine
        .signal(&who("ann"), &id, "typing", None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert!(
        err.retry_after_duration()
            .is_some_and(|w| w <= Duration::from_millis(200))
    );
    // The send bucket is untouched by signals, and the other way round.
    engine.send(&who("ann"), &id, "c1", "hi").await.unwrap();
    let err = engine.send(&who("ann"), &id, "c2", "hi").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    let (engine, _) = engine_with(config).await;
    let id = stored_room(&engine, "r", 10).await;
    let _ann = join(&engine, &user("ann"), &id).await;
    engine.send(&who("ann"), &id, "c1", "hi").await.unwrap();
    engine
        .signal(&who("ann"), &id, "typing", None)
        .await
        .unwrap();
    // Another user has a bucket of their own.
    let _bob = join(&engine, &user("bob"), &id).await;
    engine
        .signal(&who("bob"), &id, "typing", None)
        .await
        .unwrap();
}

/// Members signal and send at once, in a random order: every member's
/// stream gets every other member's signals exactly once, none of its own,
/// and the entries stay gap-free and in order around them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_signals_and_sends_reach_every_other_member_once() {
    const MEMBERS: usize = 4;
    const SIGNALS: usize = 8;
    const TEXTS: usize = 6;
    for round in 0..3 {
        let mut rng = rng(&format!("signals round {round}"));
        let (engine, _) = engine().await;
        let id = stored_room(&engine, "r", 10).await;
        let names: Vec<String> = (0..MEMBERS).map(|i| format!("m{i}")).collect();
        let mut readers = Vec::new();
        for name in &names {
            let (_, stream, seat) = join(&engine, &user(name), &id).await.into_parts();
            readers.push((name.clone(), stream, seat));
        }
        let head = engine
            .room(&who("m0"), &id)
            .await
            .unwrap()
            .unwrap()
            .last_seq;
        let expected_texts = MEMBERS * TEXTS;
        let readers: Vec<_> = readers
            .into_iter()
            .map(|(name, mut stream, seat)| {
                tokio::spawn(async move {
                    let _seat = seat;
                    let mut signals: Vec<(String, u64)> = Vec::new();
                    let mut seqs = Vec::new();
                    let mut texts = 0;
                    while texts < expected_texts {
                        match stream.next_live().await.unwrap() {
                            // Other members' joins came before `head`.
                            Live::Entry(e) if e.seq <= head => {}
                            Live::Entry(e) => {
                                seqs.push(e.seq);
                                if e.kind == EntryKind::Text {
                                    texts += 1;
                                }
                            }
                            Live::Notice(n) => {
                                let NoticeKind::Signal { data, .. } = &n.kind else {
                                    panic!("{name}: {n:?}");
                                };
                                let n_of = data.as_ref().unwrap()["n"].as_u64().unwrap();
                                signals.push((n.sender.to_string(), n_of));
                            }
                        }
                    }
                    // Signals sent after the last text may still be on the way.
                    while let Ok(Ok(Live::Notice(n))) =
                        tokio::time::timeout(Duration::from_millis(300), stream.next_live()).await
                    {
                        let NoticeKind::Signal { data, .. } = &n.kind else {
                            panic!("{name}: {n:?}");
                        };
                        let n_of = data.as_ref().unwrap()["n"].as_u64().unwrap();
                        signals.push((n.sender.to_string(), n_of));
                    }
                    (name, signals, seqs)
                })
            })
            .collect();
        let writers: Vec<_> = names
            .iter()
            .map(|name| {
                let engine = engine.clone();
                let id = id.clone();
                let me = who(name);
                let mut plan: Vec<bool> = (0..SIGNALS).map(|_| true).collect();
                plan.extend((0..TEXTS).map(|_| false));
                // A random interleaving of this member's signals and texts.
                for i in (1..plan.len()).rev() {
                    plan.swap(i, rng.random_range(0..=i));
                }
                let pause: u64 = rng.random_range(0..3);
                tokio::spawn(async move {
                    let (mut s, mut t) = (0u64, 0u64);
                    for signal in plan {
                        if signal {
                            let mut data = Data::new();
                            data.insert("n".into(), s.into());
                            engine.signal(&me, &id, "typing", Some(data)).await.unwrap();
                            s += 1;
                        } else {
                            engine.send(&me, &id, &format!("c{t}"), "hi").await.unwrap();
                            t += 1;
                        }
                        tokio::time::sleep(Duration::from_millis(pause)).await;
                    }
                })
            })
            .collect();
        for w in writers {
            w.await.unwrap();
        }
        for r in readers {
            let (name, signals, seqs) = r.await.unwrap();
            let mut per_sender: HashMap<String, Vec<u64>> = HashMap::new();
            for (sender, n) in signals {
                assert_ne!(sender, name, "{name} got its own signal");
                per_sender.entry(sender).or_default().push(n);
            }
            for other in names.iter().filter(|n| **n != name) {
                let mut got = per_sender.remove(other).unwrap_or_default();
                got.sort_unstable();
                let all: Vec<u64> = (0..SIGNALS as u64).collect();
                assert_eq!(got, all, "{name} from {other}: each once");
            }
            let want: Vec<u64> = (head + 1..=head + expected_texts as u64).collect();
            assert_eq!(seqs, want, "{name}: entries gap-free, in order");
        }
    }
}
