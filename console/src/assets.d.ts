/** esbuild bundles the style sheet that main.tsx imports into console.css beside the script. */
declare module '*.css';
