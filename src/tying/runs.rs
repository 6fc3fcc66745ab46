//! Run cutting: each group's members, as stretches of a sequence, cut into runs of at most
//! [`REDUCE_RUN`] values (at quad edges when longer), and the run tables of every level of a
//! scalar reduction (`shaders/tie_reduce_runs.wgsl`) and of a broadcast in place (`runs` of
//! `shaders/tie_broadcast.wgsl` and `shaders/tie_broadcast_quads.wgsl`). Host only.

/// Values one thread of a scalar-reduction level adds at most (`REDUCE_RUN` in WGSL; the plan
/// cuts the runs).
pub(crate) const REDUCE_RUN: u32 = 32;

/// A run of a sequence of values: at most [`REDUCE_RUN`] neighbours of one group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Run {
    first: u32,
    len: u32,
    /// Starts on a quad and holds whole quads: read or written four values at a time.
    quads: bool,
}

/// Positions `first..first + len` of one group cut into runs, in order. A stretch of at most
/// [`REDUCE_RUN`] is one run; a longer one is cut at quad edges: the values before its first
/// quad edge, runs of at most [`REDUCE_RUN`] whole quads, the values after its last quad
/// edge.
fn cut_runs(first: u32, len: u32) -> Vec<Run> {
    let end = first + len;
    if len <= REDUCE_RUN {
        let quads = first.is_multiple_of(4) && len.is_multiple_of(4);
        return vec![Run { first, len, quads }];
    }
    let (head, tail) = (first.next_multiple_of(4), end / 4 * 4);
    let mut runs = Vec::new();
    if head > first {
        runs.push(Run {
            first,
            len: head - first,
            quads: false,
        });
    }
    runs.extend((head..tail).step_by(REDUCE_RUN as usize).map(|at| Run {
        first: at,
        len: REDUCE_RUN.min(tail - at),
        quads: true,
    }));
    if end > tail {
        runs.push(Run {
            first: tail,
            len: end - tail,
            quads: false,
        });
    }
    runs
}

/// How many runs [`cut_runs`] cuts `first..first + len` into.
fn run_count(first: u32, len: u32) -> usize {
    if len <= REDUCE_RUN {
        return 1;
    }
    let (head, tail) = (first.next_multiple_of(4), (first + len) / 4 * 4);
    usize::from(head > first)
        + (tail - head).div_ceil(REDUCE_RUN) as usize
        + usize::from(first + len > tail)
}

/// One level's run tables, `[first, length, destination, count]` each, longest first
/// (stable), so neighbouring threads loop alike: the runs of whole quads (first and length in
/// quads), and the others (in values).
#[derive(Debug, Default)]
pub(super) struct RunTables {
    pub(super) quads: Vec<[u32; 4]>,
    pub(super) values: Vec<[u32; 4]>,
}

impl RunTables {
    /// Both tables cut into pieces that each fit one storage binding of `device` (a map of
    /// many tiny groups has 16 bytes of runs per member): (runs, whether runs of quads).
    pub(super) fn pieces(
        &self,
        device: &wgpu::Device,
    ) -> impl Iterator<Item = (&[[u32; 4]], bool)> {
        let max_runs = (device.limits().max_storage_buffer_binding_size / 16)
            .min(u64::from(u32::MAX)) as usize;
        [(&self.quads, true), (&self.values, false)]
            .into_iter()
            .flat_map(move |(runs, quads)| runs.chunks(max_runs).map(move |piece| (piece, quads)))
    }

    fn push(&mut self, run: Run, destination: u32, count: u32) {
        if run.quads {
            self.quads
                .push([run.first / 4, run.len / 4, destination, count]);
        } else {
            self.values.push([run.first, run.len, destination, count]);
        }
    }

    fn sorted(mut self) -> Self {
        self.quads.sort_by_key(|r| std::cmp::Reverse(r[1]));
        self.values.sort_by_key(|r| std::cmp::Reverse(r[1]));
        self
    }
}

/// Groups to reduce: per group (group, member count, first stretch, stretches), indexing
/// `stretches`, the stretches of a sequence that hold its values, in order, as (first, length).
#[derive(Clone, Debug, Default)]
pub(super) struct OpenGroups {
    groups: Vec<[u32; 4]>,
    stretches: Vec<(u32, u32)>,
}

impl OpenGroups {
    fn push(&mut self, group: u32, count: u32, stretches: impl IntoIterator<Item = (u32, u32)>) {
        let first = self.stretches.len() as u32;
        self.stretches.extend(stretches);
        let n = self.stretches.len() as u32 - first;
        self.groups.push([group, count, first, n]);
    }

    /// Group entry `[group, count, first, n]`'s stretches.
    fn of(&self, entry: &[u32; 4]) -> &[(u32, u32)] {
        &self.stretches[entry[2] as usize..(entry[2] + entry[3]) as usize]
    }
}

/// The non-empty groups over the members in group order, where group `g` holds positions
/// `offsets[g]..offsets[g + 1]`: one stretch each.
pub(super) fn sorted_groups(offsets: &[u32]) -> OpenGroups {
    let mut open = OpenGroups::default();
    for (g, w) in offsets.windows(2).enumerate().filter(|(_, w)| w[1] > w[0]) {
        open.push(g as u32, w[1] - w[0], [(w[0], w[1] - w[0])]);
    }
    open
}

/// Each group's members (`perm`, in group order and, within a group, ascending) as stretches
/// of neighbouring parameters, in order: `visit(group, first, length)`.
fn for_each_stretch(perm: &[u32], offsets: &[u32], mut visit: impl FnMut(u32, u32, u32) -> bool) {
    for (g, w) in offsets.windows(2).enumerate().filter(|(_, w)| w[1] > w[0]) {
        let members = &perm[w[0] as usize..w[1] as usize];
        let mut first = members[0];
        let mut len = 1;
        for &param in &members[1..] {
            if param == first + len {
                len += 1;
            } else {
                if !visit(g as u32, first, len) {
                    return;
                }
                (first, len) = (param, 1);
            }
        }
        if !visit(g as u32, first, len) {
            return;
        }
    }
}

/// Whether the runs of a reduction in place (`in_place_groups` cut by [`cut_runs`]) number at
/// most `limit` (and at least one); counted without building them, stopping past the limit.
pub(super) fn runs_in_place_at_most(perm: &[u32], offsets: &[u32], limit: usize) -> bool {
    let mut runs = 0usize;
    for_each_stretch(perm, offsets, |_, first, len| {
        runs += run_count(first, len);
        runs <= limit
    });
    runs >= 1 && runs <= limit
}

/// The non-empty groups over the tensor itself: each group's members cut into stretches of
/// neighbouring parameters.
pub(super) fn in_place_groups(perm: &[u32], offsets: &[u32]) -> OpenGroups {
    let mut open = OpenGroups::default();
    let mut current: Option<u32> = None;
    for_each_stretch(perm, offsets, |g, first, len| {
        if current != Some(g) {
            let count = offsets[g as usize + 1] - offsets[g as usize];
            open.groups.push([g, count, open.stretches.len() as u32, 0]);
            current = Some(g);
        }
        open.stretches.push((first, len));
        open.groups.last_mut().expect("pushed above")[3] += 1;
        true
    });
    open
}

/// The runs of a broadcast in place (`runs` of `shaders/tie_broadcast.wgsl` and
/// `shaders/tie_broadcast_quads.wgsl`): each group's stretches cut by [`cut_runs`], with the
/// group as destination.
pub(super) fn broadcast_runs(open: &OpenGroups) -> RunTables {
    let mut tables = RunTables::default();
    for entry in &open.groups {
        for &(first, len) in open.of(entry) {
            for run in cut_runs(first, len) {
                tables.push(run, entry[0], 0);
            }
        }
    }
    tables.sorted()
}

/// The run tables of a scalar reduction (see `shaders/tie_reduce_runs.wgsl`) of the groups
/// `open`, whose stretches level 1 reads ([`sorted_groups`] or [`in_place_groups`]).
///
/// Level 1 cuts each group's stretches by [`cut_runs`]; each later level cuts the run sums of
/// the groups that had several runs on the level below (numbered in group and run order:
/// their slots in the partials). A group's only run on a level has its group as destination
/// and its member count as `count`; other runs have their slot as destination and `count` 0.
pub(super) fn run_levels(mut open: OpenGroups) -> Vec<RunTables> {
    let mut levels = Vec::new();
    while !open.groups.is_empty() {
        let mut tables = RunTables::default();
        let mut next = OpenGroups::default();
        let mut slots = 0u32;
        for entry in &open.groups {
            let [group, count, ..] = *entry;
            let stretches = open.of(entry);
            if let [(first, len)] = *stretches {
                if let [run] = cut_runs(first, len)[..] {
                    tables.push(run, group, count);
                    continue;
                }
            }
            let start = slots;
            for &(first, len) in stretches {
                for run in cut_runs(first, len) {
                    tables.push(run, slots, 0);
                    slots += 1;
                }
            }
            next.push(group, count, [(start, slots - start)]);
        }
        levels.push(tables.sorted());
        open = next;
    }
    levels
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every level's runs hold 1..=32 values, longest first, runs of quads start on a quad;
    /// summing level by level as the shader does gives every non-empty group the sum of
    /// exactly its members (checked in integers), and its member count with its last run.
    #[test]
    fn run_levels_sum_every_group_once() {
        let sizes = [
            0u32,
            1,
            2,
            31,
            32,
            33,
            0,
            64,
            1023,
            1024,
            1025,
            5,
            32 * 32 * 32 + 1,
            3,
        ];
        let mut offsets = vec![0u32];
        for size in sizes {
            offsets.push(offsets.last().unwrap() + size);
        }
        let members = *offsets.last().unwrap() as usize;
        let levels = run_levels(sorted_groups(&offsets));
        assert_eq!(levels.len(), 4, "32,769 members take four levels");
        assert!(levels[0].quads.len() > 1000 && !levels[0].values.is_empty());
        let mut input: Vec<u64> = (0..members as u64).map(|i| i * i + 1).collect();
        let mut done = vec![None; sizes.len()];
        for level in &levels {
            let slots = level.quads.iter().chain(&level.values);
            let mut partials = vec![None; slots.filter(|r| r[3] == 0).count()];
            for (table, width) in [(&level.quads, 4), (&level.values, 1)] {
                assert!(
                    table.windows(2).all(|w| w[0][1] >= w[1][1]),
                    "longest first"
                );
                for &[first, len, dest, count] in table {
                    let (first, len) = (first * width, len * width);
                    assert!((1..=REDUCE_RUN).contains(&len));
                    let sum: u64 = input[first as usize..(first + len) as usize].iter().sum();
                    if count == 0 {
                        assert!(partials[dest as usize].replace(sum).is_none());
                    } else {
                        assert!(done[dest as usize].replace((sum, count)).is_none());
                    }
                }
            }
            input = partials.into_iter().map(Option::unwrap).collect();
        }
        assert!(input.is_empty());
        for (g, size) in sizes.into_iter().enumerate() {
            let (lo, hi) = (offsets[g] as u64, offsets[g + 1] as u64);
            let want = (size > 0).then(|| ((lo..hi).map(|i| i * i + 1).sum::<u64>(), size));
            assert_eq!(done[g], want, "group {g}");
        }
        assert!(run_levels(sorted_groups(&[0, 0, 0])).is_empty());
    }

    /// Each group's members (ascending) split where a parameter does not follow the one before.
    #[test]
    fn in_place_groups_cut_stretches_of_neighbours() {
        // Group 0: 0-3, 8-9; group 1: empty; group 2: 4, 6, 7.
        let perm = [0, 1, 2, 3, 8, 9, 4, 6, 7];
        let open = in_place_groups(&perm, &[0, 6, 6, 9]);
        let got: Vec<_> = open
            .groups
            .iter()
            .map(|e| (e[0], e[1], open.of(e).to_vec()))
            .collect();
        assert_eq!(
            got,
            [(0, 6, vec![(0, 4), (8, 2)]), (2, 3, vec![(4, 1), (6, 2)])]
        );
        // Four stretches, one run each: at most 4 runs, not 3.
        assert!(runs_in_place_at_most(&perm, &[0, 6, 6, 9], 4));
        assert!(!runs_in_place_at_most(&perm, &[0, 6, 6, 9], 3));
        // Level 1 reads four runs (one of a whole quad), each a partial of its group.
        let levels = run_levels(open);
        assert_eq!(levels[0].quads, [[0, 1, 0, 0]]);
        assert_eq!(levels.len(), 2);
    }

    /// A long stretch is cut at quad edges into a ragged head, whole-quad runs and a ragged
    /// tail, in order and covering it once; a short one stays whole.
    #[test]
    fn cut_runs_at_quad_edges() {
        let run = |first, len, quads| Run { first, len, quads };
        assert_eq!(cut_runs(8, 32), [run(8, 32, true)]);
        assert_eq!(cut_runs(9, 30), [run(9, 30, false)]);
        assert_eq!(
            cut_runs(5, 70),
            [
                run(5, 3, false),
                run(8, 32, true),
                run(40, 32, true),
                run(72, 3, false)
            ]
        );
        for (first, len) in [(0u32, 33u32), (3, 100), (7, 36), (1, 1000), (5, 9), (4, 64)] {
            let runs = cut_runs(first, len);
            assert_eq!(run_count(first, len), runs.len());
            let mut at = first;
            for r in &runs {
                assert_eq!(r.first, at);
                assert!(r.len >= 1 && r.len <= REDUCE_RUN);
                assert!(!r.quads || (r.first % 4 == 0 && r.len % 4 == 0));
                at += r.len;
            }
            assert_eq!(at, first + len);
        }
    }
}
