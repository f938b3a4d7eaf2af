//! Section 5 of `BENCHMARKS.md`: the figures of [`super::run`], worded in both languages.

use std::fmt::Write as _;

use super::{Churn, Detection, Memory, Results, ScaleRound};
use crate::bench::report::{Align, Lang, Summary, Verdict, at_most, table_header};
use crate::bench::stats::{max, median, paired_ratio};

/// Targets of issue #17.
const BFD_MEDIAN_S: f64 = 0.5;
const SCALE_RATIO: f64 = 1.5;
const MEMORY_MIB: f64 = 30.0;
const CHURN_PER_S: f64 = 1_000.0;

/// Writes the section and adds its targets to the summary.
pub(in crate::bench) fn section(s: &mut String, summary: &mut Summary, r: &Results, lang: Lang) {
    let _ = writeln!(
        s,
        "## 5. {}\n",
        lang.t("BGP mode against a real router", "Режим BGP с настоящим маршрутизатором")
    );
    let _ = writeln!(
        s,
        "{}\n",
        lang.t(
            "Every figure comes from a fresh lab of network namespaces on one bridge: FRR 8 \
             (bgpd, bfdd, zebra; AS 64500) as the router, installing what it learns into its \
             kernel with ECMP, and nodes (AS 64501) running `metallb-speaker --mode bgp` with \
             the file source. The baseline of the scale figure is BIRD 2, a C routing daemon, \
             announcing the same prefixes to the same router.",
            "Каждое значение получено на новом стенде из сетевых пространств имён на одном \
             мосту: маршрутизатор — FRR 8 (bgpd, bfdd, zebra; AS 64500), который устанавливает \
             полученные маршруты в своё ядро с ECMP, и узлы (AS 64501) с `metallb-speaker --mode \
             bgp` и файловым источником. База сравнения для масштаба — BIRD 2, демон \
             маршрутизации на C, анонсирующий те же префиксы тому же маршрутизатору."
        )
    );
    convergence(s, summary, r, lang);
    scale(s, summary, &r.scale, r.scale_prefixes, lang);
    if let Some(m) = &r.memory {
        memory(s, summary, m, lang);
    }
    churn(s, summary, r, lang);
}

fn convergence(s: &mut String, summary: &mut Summary, r: &Results, lang: Lang) {
    let _ = writeln!(s, "### 5.1 {}\n", lang.t("Convergence", "Сходимость"));
    let _ = writeln!(
        s,
        "{}\n",
        lang.t(
            "Three nodes announce 203.0.113.10/32; the router's kernel route has three next \
             hops. Then node n1 dies without a word: its cable is pulled and its speaker killed \
             with SIGKILL. Measured: until the router's kernel route has lost n1's next hop \
             (polled every 10 ms). With BFD at 100 ms × 3, and with the hold timer alone at \
             3 s (the smallest RFC 4271 allows; with the default 90 s that row scales by 30).",
            "Три узла анонсируют 203.0.113.10/32; маршрут в ядре маршрутизатора имеет три \
             следующих перехода. Затем узел n1 молча умирает: у него выдернут кабель, а спикер \
             убит SIGKILL. Измеряется время до исчезновения перехода n1 из маршрута в ядре \
             маршрутизатора (опрос каждые 10 мс). С BFD 100 мс × 3 и только с таймером \
             удержания 3 с (наименьшее, что допускает RFC 4271; со стандартными 90 с эта строка \
             умножается на 30)."
        )
    );
    table_header(
        s,
        lang,
        &[
            ("detection", "обнаружение", Align::Left),
            ("trials", "попыток", Align::Right),
            ("median, s", "медиана, с", Align::Right),
            ("max, s", "макс, с", Align::Right),
        ],
    );
    let times = |d: Detection| -> Vec<f64> {
        r.convergence.iter().filter(|c| c.detection == d).map(|c| c.seconds).collect()
    };
    let (bfd, hold) = (times(Detection::Bfd), times(Detection::HoldTimer));
    for (label, t) in
        [(lang.t("BFD", "BFD"), &bfd), (lang.t("hold timer", "таймер удержания"), &hold)]
    {
        let _ = writeln!(s, "| {label} | {} | {:.3} | {:.3} |", t.len(), median(t), max(t));
    }
    let _ = writeln!(
        s,
        "\n{}: {:.1}×.\n",
        lang.t("Hold timer alone over BFD, medians", "Только таймер удержания к BFD, медианы"),
        median(&hold) / median(&bfd)
    );
    let verdict = at_most(lang, median(&bfd), BFD_MEDIAN_S, " s");
    let _ = writeln!(
        s,
        "- {}: {}.\n",
        lang.t("BFD median ≤ 0.5 s", "медиана с BFD ≤ 0,5 с"),
        verdict.text
    );
    summary.push((
        lang.t("BGP convergence with BFD, median ≤ 0.5 s", "сходимость BGP с BFD, медиана ≤ 0,5 с")
            .to_owned(),
        verdict,
    ));
}

fn scale(
    s: &mut String,
    summary: &mut Summary,
    rounds: &[ScaleRound],
    prefixes: usize,
    lang: Lang,
) {
    let _ = writeln!(s, "### 5.2 {}\n", lang.t("Scale", "Масштаб"));
    let _ = writeln!(
        s,
        "{}\n",
        match lang {
            Lang::En => format!(
                "One node announces {prefixes} /32 prefixes (from 198.18.0.0/15) to the router. \
                 Measured: from the router's last summary that counts none of them until the \
                 first that counts all (summaries polled back to back, every 20 ms at most; an \
                 upper bound, too high by at most one poll), for our speaker and for BIRD, in \
                 alternation, one fresh lab each. The session set-up is left out: its timers \
                 are settings, not speed."
            ),
            Lang::Ru => format!(
                "Один узел анонсирует маршрутизатору {prefixes} префиксов /32 (из 198.18.0.0/15). \
                 Измеряется время от последней сводки маршрутизатора, где нет ни одного из них, \
                 до первой, где есть все (сводки запрашиваются подряд, не реже раза в 20 мс; \
                 это оценка сверху, завышенная не более чем на один опрос), для нашего спикера \
                 и для BIRD поочерёдно, каждый раз на новом стенде. Установление сессии не \
                 входит: его таймеры — настройки, а не скорость."
            ),
        }
    );
    table_header(
        s,
        lang,
        &[
            ("round", "раунд", Align::Right),
            ("speaker, s", "спикер, с", Align::Right),
            ("BIRD, s", "BIRD, с", Align::Right),
            ("ratio", "отношение", Align::Right),
        ],
    );
    for (i, r) in rounds.iter().enumerate() {
        let _ = writeln!(
            s,
            "| {} | {:.3} | {:.3} | {:.2} |",
            i + 1,
            r.speaker_s,
            r.baseline_s,
            r.speaker_s / r.baseline_s
        );
    }
    let ours: Vec<f64> = rounds.iter().map(|r| r.speaker_s).collect();
    let base: Vec<f64> = rounds.iter().map(|r| r.baseline_s).collect();
    let verdict = at_most(lang, paired_ratio(&ours, &base), SCALE_RATIO, "×");
    let _ = writeln!(
        s,
        "\n- {}: {}.\n",
        lang.t("median ratio ≤ 1.5× BIRD", "медиана отношения ≤ 1,5× BIRD"),
        verdict.text
    );
    summary.push((
        lang.t("BGP scale, speaker ≤ 1.5× BIRD", "масштаб BGP, спикер ≤ 1,5× BIRD").to_owned(),
        verdict,
    ));
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn memory(s: &mut String, summary: &mut Summary, m: &Memory, lang: Lang) {
    let _ = writeln!(s, "### 5.3 {}\n", lang.t("Memory", "Память"));
    let _ = writeln!(
        s,
        "{}\n",
        match lang {
            Lang::En => format!(
                "The speaker announces {} IPs to {} routers (two sessions); read from \
                 `/proc/<pid>/status` once both routers hold everything. BIRD announcing the \
                 same, for scale.",
                m.prefixes, m.peers
            ),
            Lang::Ru => format!(
                "Спикер анонсирует {} IP {} маршрутизаторам (две сессии); значения из \
                 `/proc/<pid>/status`, когда оба маршрутизатора получили всё. Для масштаба — \
                 BIRD, анонсирующий то же самое.",
                m.prefixes, m.peers
            ),
        }
    );
    table_header(
        s,
        lang,
        &[
            ("program", "программа", Align::Left),
            ("resident, MiB", "резидентная, МиБ", Align::Right),
            ("peak, MiB", "пик, МиБ", Align::Right),
        ],
    );
    let _ = writeln!(
        s,
        "| metallb-speaker | {:.1} | {:.1} |",
        mib(m.speaker_rss_kib),
        mib(m.speaker_peak_kib)
    );
    let _ = writeln!(s, "| BIRD 2 | {:.1} | |", mib(m.baseline_rss_kib));
    let verdict = at_most(lang, mib(m.speaker_peak_kib), MEMORY_MIB, " MiB");
    let _ = writeln!(s, "\n- {}: {}.\n", lang.t("peak ≤ 30 MiB", "пик ≤ 30 МиБ"), verdict.text);
    summary.push((
        lang.t(
            "BGP speaker memory, 10 000 IPs × 2 peers ≤ 30 MiB",
            "память BGP-спикера, 10 000 IP × 2 пира ≤ 30 МиБ",
        )
        .to_owned(),
        verdict,
    ));
}

fn churn(s: &mut String, summary: &mut Summary, r: &Results, lang: Lang) {
    let Some(c) = &r.churn else { return };
    let _ = writeln!(s, "### 5.4 {}\n", lang.t("Churn", "Поток изменений"));
    let _ = writeln!(
        s,
        "{}\n",
        match lang {
            Lang::En => format!(
                "With {} prefixes up, the node's file changes every 100 ms: {} prefixes \
                 withdrawn, {} new ones announced; {} changes in all, offered at {:.0} a second \
                 (the speaker polls its file every 100 ms, as fast as the steps). Further rows \
                 offer more per step in the same session, right after: the margin. Measured, \
                 each step's latency from its file write until its first new prefix is in the \
                 router's kernel (polled every 10 ms), averaged over the first ten steps and \
                 over the last ten; the applied rate is the changes over the offered duration \
                 plus the growth of that latency (last − first). A constant latency (the speaker's file \
                 poll, FRR, zebra) delays every step alike and cancels; a speaker falling \
                 behind shows as growth. Then: when the router's kernel table is exactly the \
                 desired set (every withdrawal applied too), and whether the session was ever \
                 reset.",
                c.prefixes, c.per_step, c.per_step, c.changes, c.offered_per_s
            ),
            Lang::Ru => format!(
                "При {} анонсированных префиксах файл узла меняется каждые 100 мс: {} префиксов \
                 отзывается, {} новых анонсируется; всего {} изменений со скоростью {:.0} в \
                 секунду (спикер опрашивает файл каждые 100 мс, с той же частотой). Следующие \
                 строки подают больше изменений за шаг в той же сессии сразу после этого: \
                 запас. Измеряется задержка шага от записи файла до появления первого нового \
                 префикса шага в ядре маршрутизатора (опрос каждые 10 мс), в среднем по первым \
                 десяти шагам и по последним десяти; применённая скорость — число изменений, делённое \
                 на длительность подачи плюс рост этой задержки (последняя − первая). \
                 Постоянная задержка (опрос файла спикером, FRR, zebra) задерживает каждый шаг \
                 одинаково и сокращается; отставание спикера видно как её рост. Затем — когда \
                 таблица ядра маршрутизатора в точности совпала с желаемым набором (применены \
                 и все отзывы), и был ли сброс сессии.",
                c.prefixes, c.per_step, c.per_step, c.changes, c.offered_per_s
            ),
        }
    );
    table_header(
        s,
        lang,
        &[
            ("offered, /s", "подано, /с", Align::Right),
            ("applied, /s", "применено, /с", Align::Right),
            ("first steps, s", "первые шаги, с", Align::Right),
            ("last steps, s", "последние шаги, с", Align::Right),
            ("table exact, s", "таблица совпала, с", Align::Right),
            ("session reset", "сброс сессии", Align::Left),
        ],
    );
    for row in std::iter::once(c).chain(&r.churn_margin) {
        let reset = if row.session_reset { lang.t("yes", "да") } else { lang.t("no", "нет") };
        let _ = writeln!(
            s,
            "| {:.0} | {:.0} | {} | {} | {:.3} | {reset} |",
            row.offered_per_s,
            applied_per_s(row),
            lags(&row.first_lags_s),
            lags(&row.last_lags_s),
            row.exact_s
        );
    }
    let _ = writeln!(
        s,
        "\n{}\n",
        lang.t(
            "Latencies: the mean, and the smallest and largest in brackets. Each is read by a \
             poll every 10 ms, and one step's varies by tens of milliseconds (which of the \
             speaker's file polls picks the write up, FRR's and zebra's batching); a mean of \
             ten varies about three times less, so the growth of the means is taken as known \
             to ±20 ms, 0.2 % of the ten seconds, and the target counts as met when the \
             applied rate reaches it within that.",
            "Задержки: среднее, в скобках — наименьшая и наибольшая. Каждая снимается опросом \
             раз в 10 мс, а задержка одного шага колеблется на десятки миллисекунд (какой из \
             опросов файла спикером подхватит запись, пакетная обработка в FRR и zebra); \
             среднее по десяти колеблется примерно втрое меньше, поэтому рост средних \
             считается известным с точностью ±20 мс, 0,2 % от десяти секунд, и цель считается \
             выполненной, если применённая скорость достигает её в этих пределах."
        )
    );
    let applied = applied_per_s(c);
    let verdict = if c.session_reset {
        Verdict {
            met: false,
            text: lang
                .t("**missed** (the session was reset)", "**не выполнено** (сессия сбрасывалась)")
                .to_owned(),
        }
    } else if kept_up(c, CHURN_PER_S) {
        Verdict {
            met: true,
            text: match lang {
                Lang::En => {
                    format!("met ({applied:.0}/s applied, {:.0}/s offered)", c.offered_per_s)
                }
                Lang::Ru => {
                    format!("выполнено (применено {applied:.0}/с, подано {:.0}/с)", c.offered_per_s)
                }
            },
        }
    } else {
        Verdict {
            met: false,
            text: format!(
                "{} ({applied:.0}/s < {CHURN_PER_S:.0}/s)",
                lang.t("**missed**", "**не выполнено**")
            ),
        }
    };
    let _ = writeln!(
        s,
        "- {}: {}.\n",
        lang.t(
            "1 000 changes a second applied, no session reset",
            "1 000 изменений в секунду применяются без сброса сессии"
        ),
        verdict.text
    );
    summary.push((
        lang.t("BGP churn 1 000/s without a reset", "поток BGP 1 000/с без сброса").to_owned(),
        verdict,
    ));
}

/// Resolution of the latency growth: each latency is read by a poll every 10 ms
/// (`PREFIX_POLL` of the measurement) and one step's varies by tens of milliseconds; the means
/// of ten steps at each end differ by noise of about two polls.
const GROWTH_RESOLUTION_S: f64 = 0.020;

/// Changes a second the router applied: the changes over the offered duration plus the growth
/// of a step's latency from the first step to the last.
///
/// Not over the offered duration plus the whole latency of the last step: that adds a constant
/// latency (the speaker's file poll, FRR, zebra) that a speaker keeping up still has, and the
/// rate could never reach the offered one.
fn applied_per_s(c: &Churn) -> f64 {
    rate(c.changes, c.changes as f64 / c.offered_per_s, growth(c))
}

/// From the mean latency of the first steps to that of the last ones, seconds.
fn growth(c: &Churn) -> f64 {
    mean(&c.last_lags_s) - mean(&c.first_lags_s)
}

fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() { 0.0 } else { xs.iter().sum::<f64>() / xs.len() as f64 }
}

/// `mean (min–max)` of latencies, seconds.
fn lags(xs: &[f64]) -> String {
    let min = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if xs.is_empty() { "–".to_owned() } else { format!("{:.3} ({min:.3}–{max:.3})", mean(xs)) }
}

/// `changes` over `offered_s` seconds stretched (or shrunk) by `growth_s`.
fn rate(changes: usize, offered_s: f64, growth_s: f64) -> f64 {
    changes as f64 / (offered_s + growth_s).max(f64::EPSILON)
}

/// Whether the router applied `target` changes a second, within [`GROWTH_RESOLUTION_S`],
/// with at least that offered.
fn kept_up(c: &Churn, target: f64) -> bool {
    let offered_s = c.changes as f64 / c.offered_per_s;
    let best = rate(c.changes, offered_s, growth(c) - GROWTH_RESOLUTION_S);
    let offered = rate(c.changes, offered_s, -GROWTH_RESOLUTION_S);
    best >= target && offered >= target
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row whose first steps took `first` s each on average (spread ±5 ms) and last ones
    /// `last` s.
    fn mk_churn(offered_per_s: f64, first: f64, last: f64) -> Churn {
        Churn {
            prefixes: 10_000,
            per_step: 50,
            offered_per_s,
            changes: 10_000,
            first_lags_s: vec![first - 0.005, first, first + 0.005],
            last_lags_s: vec![last + 0.005, last, last - 0.005],
            exact_s: last,
            session_reset: false,
        }
    }

    /// (offered/s, first lag s, last lag s, applied/s, kept up with 1 000/s)
    const CASES: [(f64, f64, f64, f64, bool); 6] = [
        // A constant latency, however long, cancels.
        (1_000.0, 0.150, 0.150, 1_000.0, true),
        (1_000.0, 2.000, 2.000, 1_000.0, true),
        // Growth within the resolution (two polls of 10 ms): kept up.
        (1_000.0, 0.150, 0.165, 998.5, true),
        // The speaker fell behind by a second over ten: 10 000 changes in 11 s.
        (1_000.0, 0.150, 1.150, 909.1, false),
        // Latency that shrank (the first step was slower): faster than offered.
        (1_000.0, 0.250, 0.150, 1_010.1, true),
        // Offered too slowly, the router cannot have applied the target.
        (500.0, 0.150, 0.150, 500.0, false),
    ];

    #[test]
    fn applied_rate_counts_the_growth_of_the_latency_not_the_latency() {
        for (offered, first, last, applied, kept) in CASES {
            let c = mk_churn(offered, first, last);
            assert!((applied_per_s(&c) - applied).abs() < 0.05, "{c:?}: {}", applied_per_s(&c));
            assert_eq!(kept_up(&c, CHURN_PER_S), kept, "{c:?}");
        }
    }

    #[test]
    fn the_section_shows_every_row_and_the_verdict() {
        let r = Results {
            churn: Some(mk_churn(1_000.0, 0.150, 0.160)),
            churn_margin: vec![Churn {
                per_step: 100,
                changes: 20_000,
                ..mk_churn(2_000.0, 0.200, 0.260)
            }],
            ..Results::default()
        };
        let mut s = String::new();
        let mut summary = Summary::default();
        churn(&mut s, &mut summary, &r, Lang::En);
        assert!(
            s.contains("| 1000 | 999 | 0.150 (0.145–0.155) | 0.160 (0.155–0.165) | 0.160 | no |"),
            "{s}"
        );
        assert!(s.contains("| 2000 | 1988 | 0.200 (0.195–0.205) |"), "{s}");
        assert!(summary.iter().all(|(_, v)| v.met), "{s}");
    }
}
