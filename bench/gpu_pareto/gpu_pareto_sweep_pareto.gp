# ctxlab plot script: run `gnuplot gpu_pareto_sweep_pareto.gp` in this folder to re-render gpu_pareto_sweep_pareto.png and gpu_pareto_sweep_pareto.svg from gpu_pareto_sweep_pareto.dat
set encoding utf8
set title 'gpu_pareto_sweep: Pareto front of quality vs kv_mb_p50' noenhanced font ',14'
set xlabel 'kv_mb_p50  (lower is better)' noenhanced
set ylabel 'quality  (higher is better)' noenhanced
set grid lc rgb '#dddddd' lt 1
set border 3 lc rgb '#404040'
set tics nomirror
set linetype 1 lc rgb '#1f77b4' lw 2
set linetype 2 lc rgb '#ff7f0e' lw 2
set linetype 3 lc rgb '#2ca02c' lw 2
set linetype 4 lc rgb '#d62728' lw 2
set linetype 5 lc rgb '#9467bd' lw 2
set linetype 6 lc rgb '#8c564b' lw 2
set linetype 7 lc rgb '#e377c2' lw 2
set linetype 8 lc rgb '#7f7f7f' lw 2
set linetype 9 lc rgb '#bcbd22' lw 2
set linetype 10 lc rgb '#17becf' lw 2
set lmargin at screen 0.08
set rmargin at screen 0.97
set bmargin at screen 0.14
set tmargin at screen 0.88
set key at screen 0.5,0.03 center center horizontal samplen 2 width 3
set xrange [0.222314:0.538794]
set yrange [1.80286:5.00311]
set terminal pngcairo size 1200,800 enhanced font ',11'
set output 'gpu_pareto_sweep_pareto.png'
plot 'gpu_pareto_sweep_pareto.dat' index 0 using 2:($4 == 0 ? $3 : NaN) with points pt 7 ps 1.4 lc rgb '#b8b8b8' title 'dominated', \
     'gpu_pareto_sweep_pareto.dat' index 1 using 2:3 with steps lw 2.5 lc rgb '#1f4e9c' title 'Pareto front', \
     'gpu_pareto_sweep_pareto.dat' index 1 using 2:3 with points pt 7 ps 1.7 lc rgb '#1f4e9c' notitle, \
     'gpu_pareto_sweep_pareto.dat' index 0 using ($4 == 1 && $8 == 0 ? $6 : NaN):7:5 with labels left font ',9' tc rgb '#101010' noenhanced notitle, \
     'gpu_pareto_sweep_pareto.dat' index 0 using ($4 == 1 && $8 == 1 ? $6 : NaN):7:5 with labels right font ',9' tc rgb '#101010' noenhanced notitle, \
     'gpu_pareto_sweep_pareto.dat' index 0 using ($4 == 1 && $8 == 2 ? $6 : NaN):7:5 with labels center font ',9' tc rgb '#101010' noenhanced notitle, \
     'gpu_pareto_sweep_pareto.dat' index 0 using ($4 == 0 && $8 == 0 ? $6 : NaN):7:5 with labels left font ',9' tc rgb '#8a8a8a' noenhanced notitle, \
     'gpu_pareto_sweep_pareto.dat' index 0 using ($4 == 0 && $8 == 1 ? $6 : NaN):7:5 with labels right font ',9' tc rgb '#8a8a8a' noenhanced notitle, \
     'gpu_pareto_sweep_pareto.dat' index 0 using ($4 == 0 && $8 == 2 ? $6 : NaN):7:5 with labels center font ',9' tc rgb '#8a8a8a' noenhanced notitle
set terminal svg size 1200,800 dynamic enhanced
set output 'gpu_pareto_sweep_pareto.svg'
replot
unset output
