# ctxlab plot script: run `gnuplot gpu_memory_scaling_context.gp` in this folder to re-render gpu_memory_scaling_context.png and gpu_memory_scaling_context.svg from gpu_memory_scaling_context.dat
set encoding utf8
set title 'peak GPU memory vs context, 5.6 GiB budget (ok trials)' noenhanced font ',14'
set xlabel 'context_length' noenhanced
set ylabel 'peak_device_mem_gb_p95' noenhanced
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
set key outside right top vertical Left reverse samplen 3 spacing 1.3
set offsets graph 0.03, graph 0.03, graph 0.06, graph 0.06
set yrange [0:*]
set xtics (8192, 16384, 32768)
set terminal pngcairo size 1200,800 enhanced font ',11'
set output 'gpu_memory_scaling_context.png'
plot 'gpu_memory_scaling_context.dat' index 0 using 2:3 with linespoints lt 1 pt 7 ps 1.3 title 'paged' noenhanced, \
     'gpu_memory_scaling_context.dat' index 1 using 2:3 with linespoints lt 2 pt 5 ps 1.3 title 'paged + l2norm' noenhanced, \
     'gpu_memory_scaling_context.dat' index 2 using 2:3 with linespoints lt 3 pt 9 ps 1.3 title 'paged + l2norm + int8' noenhanced, \
     'gpu_memory_scaling_context.dat' index 3 using 2:3 with linespoints lt 4 pt 11 ps 1.3 title 'sdpa' noenhanced, \
     'gpu_memory_scaling_context.dat' index 4 using 2:3 with linespoints lt 5 pt 13 ps 1.3 title 'sdpa + kivi + int8' noenhanced
set terminal svg size 1200,800 dynamic enhanced
set output 'gpu_memory_scaling_context.svg'
replot
unset output
