//! Data parallelism that costs nothing on small inputs.
//!
//! rayon's first use starts its pool (a thread per core) and every call hands work to it and
//! waits: on a repo of a few environments that was more than the work itself, at the start of
//! every run. Below [`PARALLEL_MIN`] items the work is done on the calling thread, in order;
//! the results are the same either way.

use rayon::prelude::*;

/// Fewer items than this are mapped on the calling thread.
pub const PARALLEL_MIN: usize = 64;

/// `items` mapped by `f`, in order.
pub fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync + Send) -> Vec<R> {
    if items.len() < PARALLEL_MIN {
        items.iter().map(f).collect()
    } else {
        items.par_iter().map(f).collect()
    }
}

/// `items` mapped by `f`, in order, with a scratch value made by `init` once per thread (once
/// in all below [`PARALLEL_MIN`]).
pub fn map_init<T: Sync, S, R: Send>(
    items: &[T],
    init: impl Fn() -> S + Sync + Send,
    f: impl Fn(&mut S, &T) -> R + Sync + Send,
) -> Vec<R> {
    if items.len() < PARALLEL_MIN {
        let mut scratch = init();
        items.iter().map(|t| f(&mut scratch, t)).collect()
    } else {
        items.par_iter().map_init(init, f).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_paths_give_the_same_results_in_order() {
        for n in [0, 1, PARALLEL_MIN - 1, PARALLEL_MIN, 5 * PARALLEL_MIN + 3] {
            let items: Vec<usize> = (0..n).collect();
            let doubled = map(&items, |i| i * 2);
            assert_eq!(doubled, items.iter().map(|i| i * 2).collect::<Vec<_>>());
            let with_scratch = map_init(&items, String::new, |s, i| {
                s.clear();
                s.push_str(&i.to_string());
                s.len()
            });
            assert_eq!(
                with_scratch,
                items
                    .iter()
                    .map(|i| i.to_string().len())
                    .collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn small_inputs_stay_on_the_calling_thread() {
        let me = std::thread::current().id();
        let items = vec![(); PARALLEL_MIN - 1];
        assert!(map(&items, |_| std::thread::current().id())
            .iter()
            .all(|t| *t == me));
    }
}
