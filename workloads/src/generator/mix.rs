//! Weighted random choice between generators: [`mix`].

use rand::Rng;

use super::core::{Completion, Context, Generator, Next};

/// Weighted random choice between generators. See [`mix`].
pub struct Mix {
    children: Vec<(u32, Box<dyn Generator>)>,
}

/// Each call asks one child, chosen at random with probability proportional to its weight
/// (weight 0: never). A child that returns `Done` is dropped and another is chosen; `Done`
/// once every child with a positive weight is done. A chosen child's `Wait` or `Pending` is
/// returned as is (children are usually infinite sources such as [`from_fn`](super::from_fn)).
pub fn mix(children: Vec<(u32, Box<dyn Generator>)>) -> Mix {
    Mix {
        children: children.into_iter().filter(|(w, _)| *w > 0).collect(),
    }
}

impl Generator for Mix {
    fn next(&mut self, ctx: &mut Context<'_>) -> Next {
        loop {
            let total: u64 = self.children.iter().map(|(w, _)| u64::from(*w)).sum();
            if total == 0 {
                return Next::Done;
            }
            let mut pick = ctx.rng.gen_range(0..total);
            let i = self
                .children
                .iter()
                .position(|(w, _)| {
                    let hit = pick < u64::from(*w);
                    pick = pick.saturating_sub(u64::from(*w));
                    hit
                })
                .expect("pick < total");
            match self.children[i].1.next(ctx) {
                Next::Done => {
                    self.children.remove(i);
                }
                other => return other,
            }
        }
    }

    fn observe(&mut self, completion: &Completion) {
        for (_, child) in &mut self.children {
            child.observe(completion);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::{from_fn, limit, OpTemplate};
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use serde_json::json;
    use std::time::Duration;

    fn source(f: &'static str) -> Box<dyn Generator> {
        from_fn(move |_, _| OpTemplate::new(f, json!(null))).boxed()
    }

    fn draw(g: &mut dyn Generator, rng: &mut StdRng) -> Next {
        g.next(&mut Context {
            now: Duration::ZERO,
            free: &[0],
            busy: 0,
            rng,
        })
    }

    #[test]
    fn weights_are_respected() {
        let mut rng = StdRng::seed_from_u64(42);
        let mut g = mix(vec![
            (1, source("a")),
            (3, source("b")),
            (0, source("never")),
        ]);
        let mut counts = [0usize; 2];
        for _ in 0..10_000 {
            match draw(&mut g, &mut rng) {
                Next::Invoke { op, .. } if op.f == "a" => counts[0] += 1,
                Next::Invoke { op, .. } if op.f == "b" => counts[1] += 1,
                other => panic!("{other:?}"),
            }
        }
        // Expected 2500 / 7500; sd ~43.
        assert!((2_300..2_700).contains(&counts[0]), "{counts:?}");
    }

    #[test]
    fn done_children_are_dropped() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut g = mix(vec![
            (1, limit(2, source("a")).boxed()),
            (1, limit(3, source("b")).boxed()),
        ]);
        let mut fs = Vec::new();
        loop {
            match draw(&mut g, &mut rng) {
                Next::Invoke { op, .. } => fs.push(op.f),
                Next::Done => break,
                other => panic!("{other:?}"),
            }
        }
        fs.sort();
        assert_eq!(fs, vec!["a", "a", "b", "b", "b"]);
        assert_eq!(draw(&mut mix(vec![]), &mut rng), Next::Done);
    }
}
