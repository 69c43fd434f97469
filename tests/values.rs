//! `Value`: texts, encodings and atoms.

use chronoflow::{DecodeError, Reason, Value};

#[test]
fn an_atom_is_its_name_and_equal_to_any_value_of_that_text() {
    let boom = Value::atom("boom");
    assert_eq!(boom.text(), "boom");
    assert_eq!(format!("{boom:?}"), "boom");
    assert_eq!(boom.as_bytes(), None);
    assert_eq!(boom, Value::atom(&String::from("boom")));
    assert_eq!(boom.clone(), boom);
    assert_ne!(boom, Value::atom("bang"));
    // (A `Debug` text of a string is quoted: another value.)
    assert_ne!(boom, Value::text_of("boom"));
    assert_eq!(boom, Value::text_of(&format_args!("boom")));
    assert_eq!(Reason::atom("boom"), Reason::Custom(boom.clone()));
    assert_eq!(
        boom.decode::<String>(),
        Err(DecodeError::NotEncoded("boom".to_string()))
    );
    // Encoded and decoded (as a journal does): a value equal to the atom.
    let bytes = postcard::to_allocvec(&boom).unwrap();
    let back: Value = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(back, boom);
    assert_eq!(back.text(), "boom");
}

#[test]
fn an_atom_outlives_every_value_made_of_it() {
    let text = {
        let a = Value::atom("outlived");
        let copies: Vec<Value> = (0..1000).map(|_| a.clone()).collect();
        drop(copies);
        a.text().as_ptr()
    };
    // (Interned: the same name gives the same text, never freed.)
    assert_eq!(Value::atom("outlived").text().as_ptr(), text);
    assert_eq!(Value::atom("outlived").text(), "outlived");
}

#[test]
fn atoms_made_on_many_threads_at_once_are_one() {
    let texts: Vec<usize> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    let mut last = 0;
                    for i in 0..200 {
                        let name = format!("thread-atom-{}", i % 50);
                        let a = Value::atom(&name);
                        assert_eq!(a.text(), name);
                        let kept = a.clone();
                        drop(a);
                        if i % 50 == 7 {
                            last = kept.text().as_ptr() as usize;
                        }
                    }
                    last
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(texts.windows(2).all(|w| w[0] == w[1]), "{texts:?}");
}

#[test]
fn values_are_shared_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Value>();
    send_sync::<Reason>();
    let boom = Value::atom("shared");
    let text = Value::text_of(&42);
    let (a, b) = std::thread::spawn(move || (boom, text)).join().unwrap();
    assert_eq!((a.text(), b.text()), ("shared", "42"));
}
